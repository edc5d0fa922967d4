//! `/scim/v2/Users`: people of the Organization, as SCIM User resources.

use app::{
    error::AppResult,
    ids::UserId,
    server::{
        scim::users::{self, ScimUser, UserFields, UserFilter},
        state::AppState,
    },
    AppError,
};
use axum::{
    extract::{Path, Query, State},
    response::Response,
};
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::{list_response, meta, parse_id, patch, scim_json, ListQuery, Provider, ScimBody, ScimError};

pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

pub async fn list(
    State(state): State<AppState>,
    provider: Provider,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    listing(&state, &provider, &query).await
}

/// `POST /Users/.search`: a list whose parameters are in the body.
pub async fn search(
    State(state): State<AppState>,
    provider: Provider,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    listing(&state, &provider, &ListQuery::from_search(&body)?).await
}

async fn listing(state: &AppState, provider: &Provider, query: &ListQuery) -> Result<Response, ScimError> {
    let filter = match query.filter()? {
        None => None,
        Some((attribute, value)) => Some(match attribute.to_ascii_lowercase().as_str() {
            "username" => UserFilter::UserName(value),
            "externalid" => UserFilter::ExternalId(value),
            "emails" | "emails.value" => UserFilter::Email(value),
            _ => {
                return Err(AppError::invalid(
                    "filter",
                    "Users are filtered by userName, externalId or emails.value.",
                )
                .into())
            }
        }),
    };
    let window = query.window()?;
    let listed = users::list(&state.db, &provider.actor, provider.org_id, filter.as_ref(), window).await?;
    let projection = query.projection();
    let resources =
        listed.resources.iter().map(|user| projection.apply(resource(user, &provider.base))).collect();
    Ok(list_response(listed.total, window.start_index, resources))
}

pub async fn get(
    State(state): State<AppState>,
    provider: Provider,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let user = users::get(&state.db, &provider.actor, provider.org_id, parse_id(&id)?).await?;
    Ok(scim_json(StatusCode::OK, &query.projection().apply(resource(&user, &provider.base))))
}

pub async fn create(
    State(state): State<AppState>,
    provider: Provider,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let fields = fields(&body)?;
    let user = users::create(&state.db, &provider.actor, &provider.client, provider.org_id, fields).await?;
    let body = resource(&user, &provider.base);
    let mut response = scim_json(StatusCode::CREATED, &body);
    if let Ok(location) = HeaderValue::from_str(&location(&user, &provider.base)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn replace(
    State(state): State<AppState>,
    provider: Provider,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let replacement = fields(&body)?;
    let user = users::change(
        &state.db,
        &state.sessions,
        &provider.actor,
        &provider.client,
        provider.org_id,
        parse_id(&id)?,
        |fields| {
            *fields = replacement;
            Ok(())
        },
    )
    .await?;
    Ok(scim_json(StatusCode::OK, &resource(&user, &provider.base)))
}

pub async fn patch(
    State(state): State<AppState>,
    provider: Provider,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let user = users::change(
        &state.db,
        &state.sessions,
        &provider.actor,
        &provider.client,
        provider.org_id,
        parse_id(&id)?,
        |fields| {
            let mut document = attributes(fields);
            patch::apply(&mut document, &body)?;
            *fields = self::fields(&Value::Object(document))?;
            Ok(())
        },
    )
    .await?;
    Ok(scim_json(StatusCode::OK, &resource(&user, &provider.base)))
}

pub async fn delete(
    State(state): State<AppState>,
    provider: Provider,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimError> {
    let id: UserId = parse_id(&id)?;
    users::delete(&state.db, &state.sessions, &provider.actor, &provider.client, provider.org_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn location(user: &ScimUser, base: &str) -> String {
    format!("{base}/Users/{}", user.id)
}

/// The User resource.
fn resource(user: &ScimUser, base: &str) -> Value {
    let mut resource = attributes(&UserFields::from(user));
    resource.insert("schemas".into(), json!([SCHEMA]));
    resource.insert("id".into(), json!(user.id));
    resource.insert("meta".into(), meta("User", location(user, base), user.created_at, user.updated_at));
    Value::Object(resource)
}

/// The attributes a provider sets, as SCIM writes them.
fn attributes(fields: &UserFields) -> Map<String, Value> {
    let mut attributes = Map::new();
    attributes.insert("userName".into(), json!(fields.user_name));
    if let Some(id) = &fields.external_id {
        attributes.insert("externalId".into(), json!(id));
    }
    if let Some(name) = &fields.display_name {
        attributes.insert("displayName".into(), json!(name));
    }
    // One address per account: which was primary is not kept, so not told.
    let emails: Vec<Value> = fields.emails.iter().map(|email| json!({"value": email})).collect();
    if !emails.is_empty() {
        attributes.insert("emails".into(), Value::Array(emails));
    }
    attributes.insert("active".into(), json!(fields.active));
    attributes
}

/// What a provider sends (a new resource, a replacement, or a patched one) as
/// the fields it sets. Unknown attributes are ignored; `displayName` falls
/// back on `name`; `active` may be a string (Entra's "False").
fn fields(body: &Value) -> AppResult<UserFields> {
    let object = body.as_object();
    let text = |name: &str| -> AppResult<Option<String>> {
        match patch::field(object, name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(AppError::invalid(name, format!("{name} must be a string."))),
        }
    };
    let user_name =
        text("userName")?.ok_or_else(|| AppError::invalid("userName", "userName is required."))?;
    let name = patch::field(object, "name").and_then(Value::as_object);
    let name_part = |part: &str| {
        patch::field(name, part).and_then(Value::as_str).map(str::trim).filter(|p| !p.is_empty())
    };
    let display_name =
        text("displayName")?.or_else(|| name_part("formatted").map(String::from)).or_else(|| {
            let parts: Vec<&str> =
                [name_part("givenName"), name_part("familyName")].into_iter().flatten().collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
    let active = match patch::field(object, "active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(active)) => *active,
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => true,
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(AppError::invalid("active", "active must be true or false.")),
    };
    Ok(UserFields {
        user_name,
        external_id: text("externalId")?,
        display_name,
        emails: emails(patch::field(object, "emails"))?,
        active,
    })
}

/// The addresses of `emails`, the primary one first.
fn emails(value: Option<&Value>) -> AppResult<Vec<String>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(AppError::invalid("emails", "emails must be a list.")),
    };
    let mut emails: Vec<(bool, String)> = Vec::new();
    for item in items {
        let object = item.as_object();
        let Some(address) = patch::field(object, "value").and_then(Value::as_str) else {
            return Err(AppError::invalid("emails", "Each of emails needs a value."));
        };
        let primary = matches!(patch::field(object, "primary"), Some(Value::Bool(true)))
            || matches!(patch::field(object, "primary"), Some(Value::String(p)) if p.eq_ignore_ascii_case("true"));
        emails.push((primary, address.trim().to_string()));
    }
    // Stable: the primary first, the others in the provider's order.
    emails.sort_by_key(|(primary, _)| !primary);
    Ok(emails.into_iter().map(|(_, address)| address).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_and_entra_users_read_alike() {
        let okta = json!({
            "schemas": [SCHEMA], "userName": "ada@x.com", "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"primary": true, "value": "ada@x.com", "type": "work"}], "active": true,
        });
        let okta = fields(&okta).unwrap();
        assert_eq!(okta.display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(okta.emails, vec!["ada@x.com"]);
        let entra = json!({
            "userName": "ada@x.com", "externalId": "e1", "displayName": "Ada L", "active": "False",
            "emails": [{"type": "home", "value": "h@y.com"}, {"type": "work", "value": "ada@x.com", "primary": "True"}],
        });
        let entra = fields(&entra).unwrap();
        assert_eq!((entra.active, entra.external_id.as_deref()), (false, Some("e1")));
        assert_eq!(entra.emails, vec!["ada@x.com", "h@y.com"]);
        assert_eq!(entra.display_name.as_deref(), Some("Ada L"));
    }

    #[test]
    fn malformed_users_name_the_attribute() {
        let field_of = |body: Value| match fields(&body) {
            Err(AppError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field_of(json!({})), "userName");
        assert_eq!(field_of(json!({"userName": 3})), "userName");
        assert_eq!(field_of(json!({"userName": "a", "active": "maybe"})), "active");
        assert_eq!(field_of(json!({"userName": "a", "emails": "a@x.com"})), "emails");
        assert_eq!(field_of(json!({"userName": "a", "emails": [{"type": "work"}]})), "emails");
    }
}
