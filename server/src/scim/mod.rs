//! SCIM 2.0 at `/scim/v2` (RFC 7643/7644): the protocol around
//! `app::server::scim`, for an Organization's identity provider holding one of
//! its SCIM tokens (`Authorization: Bearer`). Bodies are `application/scim+json`
//! (plain JSON is read too); errors are SCIM error messages.

mod discovery;
mod groups;
mod patch;
mod users;

use app::{
    server::{actor::Actor, actor::Client, scim::tokens, state::AppState},
    AppError,
};
use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use http::{header, request::Parts, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub const CONTENT_TYPE: &str = "application/scim+json";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(discovery::service_provider_config))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/Users", get(users::list).post(users::create))
        .route("/Users/.search", post(users::search))
        .route("/Users/{id}", get(users::get).put(users::replace).patch(users::patch).delete(users::delete))
        .route("/Groups", get(groups::list).post(groups::create))
        .route("/Groups/.search", post(groups::search))
        .route("/.search", post(search_everything))
        .route(
            "/Groups/{id}",
            get(groups::get).put(groups::replace).patch(groups::patch).delete(groups::delete),
        )
        .fallback(|| async { ScimError::from(AppError::NotFound) })
}

/// `POST /.search` across resource types: not offered (RFC 7644 §3.4.3 lets
/// a service provider answer 501); `/Users/.search` and `/Groups/.search` are.
async fn search_everything(_provider: Provider) -> ScimError {
    ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "Search one resource type at a time: POST /Users/.search or /Groups/.search.",
    )
}

/// The identity provider behind the request's SCIM token.
pub struct Provider {
    pub actor: Actor,
    pub org_id: app::ids::OrgId,
    pub client: Client,
    /// Where resources live, for their `meta.location`.
    pub base: String,
}

impl FromRequestParts<AppState> for Provider {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        let actor = tokens::authenticate(&state.db, presented).await?;
        let Actor::ScimToken { org_id, .. } = actor else {
            return Err(AppError::Internal.into());
        };
        Ok(Self {
            actor,
            org_id,
            client: Client::of_request(parts, state.trusted_proxies),
            base: format!("{}/scim/v2", state.public_url.trim_end_matches('/')),
        })
    }
}

/// An error as SCIM tells it (RFC 7644 §3.12).
#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ScimError {
    pub fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self { status, scim_type, detail: detail.into() }
    }
}

impl From<AppError> for ScimError {
    fn from(err: AppError) -> Self {
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let scim_type = match &err {
            // The domain names the field at fault; SCIM wants the kind of fault.
            AppError::Invalid { field, .. } => Some(match field.as_str() {
                "filter" => "invalidFilter",
                "path" => "invalidPath",
                "Operations" | "op" | "body" => "invalidSyntax",
                "emails" if err.to_string().contains("owner's address") => "mutability",
                _ => "invalidValue",
            }),
            AppError::Conflict { field, .. }
                if ["userName", "emails", "displayName", "externalId"].contains(&field.as_str()) =>
            {
                Some("uniqueness")
            }
            AppError::BadRequest(_) => Some("invalidSyntax"),
            _ => None,
        };
        let detail = match &err {
            AppError::NotFound => "Resource not found.".to_string(),
            other => other.to_string(),
        };
        Self { status, scim_type, detail }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        scim_json(self.status, &body)
    }
}

/// A SCIM response body.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// A list response (RFC 7644 §3.4.2).
fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Response {
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

/// A request body: a JSON object, whatever JSON content type it came as.
pub struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = match Bytes::from_request(request, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(rejection.into_response())
            }
            Err(rejection) => {
                return Err(ScimError::from(AppError::BadRequest(rejection.body_text())).into_response())
            }
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(value @ Value::Object(_)) => Ok(Self(value)),
            Ok(_) => {
                Err(ScimError::from(AppError::invalid("body", "The body must be a JSON object."))
                    .into_response())
            }
            Err(err) => {
                Err(ScimError::from(AppError::invalid("body", format!("The body is not JSON: {err}.")))
                    .into_response())
            }
        }
    }
}

/// `startIndex`, `count`, `filter` and the attributes to return, of a list
/// (query string, or the body of a `POST .search`) or of one resource.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    #[serde(default, deserialize_with = "text_or_number")]
    start_index: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    count: Option<String>,
    filter: Option<String>,
    #[serde(default, deserialize_with = "names")]
    attributes: Option<String>,
    #[serde(default, deserialize_with = "names")]
    excluded_attributes: Option<String>,
}

/// A number in a search body, or text in a query string.
fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(other) => Some(other.to_string()),
    })
}

/// Attribute names: comma-separated in a query string, a list in a search body.
fn names<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::String(text)) => Some(text),
        Some(Value::Array(items)) => {
            Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
        }
        _ => None,
    })
}

impl ListQuery {
    /// A `POST .search` body (RFC 7644 §3.4.3).
    fn from_search(body: &Value) -> Result<Self, ScimError> {
        serde_json::from_value(body.clone()).map_err(|err| {
            AppError::invalid("body", format!("Cannot read the search request: {err}.")).into()
        })
    }

    fn window(&self) -> Result<app::server::scim::Window, ScimError> {
        let number = |field: &str, value: &Option<String>| -> Result<Option<i64>, ScimError> {
            value
                .as_deref()
                .map(|v| v.trim().parse::<i64>())
                .transpose()
                .map_err(|_| AppError::invalid(field, format!("{field} must be a whole number.")).into())
        };
        Ok(app::server::scim::Window::new(
            number("startIndex", &self.start_index)?,
            number("count", &self.count)?,
        ))
    }

    /// The attribute and value of an `attribute eq "value"` filter.
    fn filter(&self) -> Result<Option<(String, String)>, ScimError> {
        self.filter.as_deref().map(patch::equality_filter).transpose().map_err(Into::into)
    }

    /// Which attributes to return (RFC 7644 §3.4.2.5).
    fn projection(&self) -> Projection {
        let list = |names: &Option<String>| -> Vec<String> {
            names
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(|name| patch::without_schema(name.trim()).to_ascii_lowercase())
                .filter(|name| !name.is_empty())
                .collect()
        };
        let attributes = list(&self.attributes);
        Projection {
            only: (!attributes.is_empty()).then_some(attributes),
            excluded: list(&self.excluded_attributes),
        }
    }
}

/// The attributes asked for (`only`, e.g. `userName`, `name.givenName`) or
/// left out; `id` and `schemas` are always returned.
struct Projection {
    only: Option<Vec<String>>,
    excluded: Vec<String>,
}

impl Projection {
    /// Whether top-level attribute `name` is returned at all.
    fn wants(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let top = |path: &String| path.split('.').next() == Some(name.as_str());
        !self.excluded.contains(&name) && self.only.as_ref().is_none_or(|only| only.iter().any(top))
    }

    fn apply(&self, mut resource: Value) -> Value {
        let Some(object) = resource.as_object_mut() else {
            return resource;
        };
        object.retain(|key, value| {
            if key == "id" || key == "schemas" {
                return true;
            }
            if !self.wants(key) {
                return false;
            }
            let key = key.to_ascii_lowercase();
            let kept =
                self.only.as_deref().map(|only| sub_names(only, &key)).filter(|named| !named.is_empty());
            let rule = kept.map(|named| (named, true)).or_else(|| {
                let dropped = sub_names(&self.excluded, &key);
                (!dropped.is_empty()).then_some((dropped, false))
            });
            if let Some((named, keep)) = rule {
                let prune = |object: &mut Map<String, Value>| {
                    object.retain(|sub, _| named.contains(&sub.to_ascii_lowercase().as_str()) == keep)
                };
                match value {
                    Value::Object(object) => prune(object),
                    Value::Array(items) => items.iter_mut().filter_map(Value::as_object_mut).for_each(prune),
                    _ => {}
                }
            }
            true
        });
        resource
    }
}

/// The sub-attributes `paths` name under attribute `key` (`emails.value` → `value`).
fn sub_names<'a>(paths: &'a [String], key: &str) -> Vec<&'a str> {
    paths.iter().filter_map(|path| path.strip_prefix(key)?.strip_prefix('.')).collect()
}

/// `meta` of a resource.
fn meta(
    resource_type: &str,
    location: String,
    created: app::time::Timestamp,
    modified: app::time::Timestamp,
) -> Value {
    json!({
        "resourceType": resource_type,
        "created": created.rfc3339(),
        "lastModified": modified.rfc3339(),
        "location": location,
    })
}

/// An id in a path: one that cannot be a resource's is simply not found.
fn parse_id<T: std::str::FromStr>(id: &str) -> Result<T, ScimError> {
    id.parse().map_err(|_| AppError::NotFound.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn projected(query: &str, resource: Value) -> Value {
        let uri: http::Uri = format!("/Users?{query}").parse().unwrap();
        let axum::extract::Query(query) = axum::extract::Query::<ListQuery>::try_from_uri(&uri).unwrap();
        query.projection().apply(resource)
    }

    #[test]
    fn only_the_attributes_asked_for_are_returned_with_id_and_schemas() {
        let user = json!({
            "schemas": ["s"], "id": "1", "userName": "ada", "displayName": "Ada",
            "emails": [{"value": "a@x.com", "type": "work"}], "meta": {"resourceType": "User"},
        });
        assert_eq!(
            projected(
                "attributes=userName,urn:ietf:params:scim:schemas:core:2.0:User:emails.value",
                user.clone()
            ),
            json!({"schemas": ["s"], "id": "1", "userName": "ada", "emails": [{"value": "a@x.com"}]})
        );
        let without = projected("excludedAttributes=displayName,emails.type,meta", user);
        assert_eq!(
            without,
            json!({"schemas": ["s"], "id": "1", "userName": "ada", "emails": [{"value": "a@x.com"}]})
        );
        assert!(!projected("excludedAttributes=members", json!({}))
            .as_object()
            .unwrap()
            .contains_key("members"));
    }

    #[test]
    fn search_bodies_carry_numbers_and_lists() {
        let body = json!({"startIndex": 2, "count": 5, "attributes": ["userName", "active"], "filter": "userName eq \"a\""});
        let query = ListQuery::from_search(&body).unwrap();
        assert_eq!(query.window().unwrap(), app::server::scim::Window::new(Some(2), Some(5)));
        assert!(query.projection().wants("active") && !query.projection().wants("emails"));
        assert_eq!(query.filter().unwrap(), Some(("userName".into(), "a".into())));
    }
}
