//! `/scim/v2/Groups`: the groups the identity provider manages, as SCIM Group
//! resources whose members are Users.

use std::collections::BTreeSet;

use app::{
    error::AppResult,
    ids::{GroupId, UserId},
    server::{
        scim::groups::{self, GroupFields, GroupFilter, ScimGroup},
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

pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

pub async fn list(
    State(state): State<AppState>,
    provider: Provider,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    listing(&state, &provider, &query).await
}

/// `POST /Groups/.search`: a list whose parameters are in the body.
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
            "displayname" => GroupFilter::DisplayName(value),
            "externalid" => GroupFilter::ExternalId(value),
            _ => {
                return Err(
                    AppError::invalid("filter", "Groups are filtered by displayName or externalId.").into()
                )
            }
        }),
    };
    let window = query.window()?;
    let projection = query.projection();
    // Large groups' members are read only when asked for (Entra leaves them out).
    let with_members = projection.wants("members");
    let listed =
        groups::list(&state.db, &provider.actor, provider.org_id, filter.as_ref(), window, with_members)
            .await?;
    let resources =
        listed.resources.iter().map(|group| projection.apply(resource(group, &provider.base))).collect();
    Ok(list_response(listed.total, window.start_index, resources))
}

pub async fn get(
    State(state): State<AppState>,
    provider: Provider,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let group = groups::get(&state.db, &provider.actor, provider.org_id, parse_id(&id)?).await?;
    Ok(scim_json(StatusCode::OK, &query.projection().apply(resource(&group, &provider.base))))
}

pub async fn create(
    State(state): State<AppState>,
    provider: Provider,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let fields = fields(&body)?;
    let group = groups::create(&state.db, &provider.actor, &provider.client, provider.org_id, fields).await?;
    let mut response = scim_json(StatusCode::CREATED, &resource(&group, &provider.base));
    if let Ok(location) = HeaderValue::from_str(&location(group.id, &provider.base)) {
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
    let group = groups::change(
        &state.db,
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
    Ok(scim_json(StatusCode::OK, &resource(&group, &provider.base)))
}

pub async fn patch(
    State(state): State<AppState>,
    provider: Provider,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let base = provider.base.clone();
    let group = groups::change(
        &state.db,
        &provider.actor,
        &provider.client,
        provider.org_id,
        parse_id(&id)?,
        |fields| {
            let mut document = attributes(fields, &base);
            patch::apply(&mut document, &body)?;
            *fields = self::fields(&Value::Object(document))?;
            Ok(())
        },
    )
    .await?;
    Ok(scim_json(StatusCode::OK, &resource(&group, &provider.base)))
}

pub async fn delete(
    State(state): State<AppState>,
    provider: Provider,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimError> {
    let id: GroupId = parse_id(&id)?;
    groups::delete(&state.db, &provider.actor, &provider.client, provider.org_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn location(id: GroupId, base: &str) -> String {
    format!("{base}/Groups/{id}")
}

fn resource(group: &ScimGroup, base: &str) -> Value {
    let fields = GroupFields {
        display_name: group.display_name.clone(),
        external_id: group.external_id.clone(),
        members: group.members.iter().map(|member| member.id).collect(),
    };
    let mut resource = attributes(&fields, base);
    resource.insert("schemas".into(), json!([SCHEMA]));
    resource.insert("id".into(), json!(group.id));
    resource
        .insert("meta".into(), meta("Group", location(group.id, base), group.created_at, group.updated_at));
    Value::Object(resource)
}

fn attributes(fields: &GroupFields, base: &str) -> Map<String, Value> {
    let mut attributes = Map::new();
    attributes.insert("displayName".into(), json!(fields.display_name));
    if let Some(id) = &fields.external_id {
        attributes.insert("externalId".into(), json!(id));
    }
    if !fields.members.is_empty() {
        let members: Vec<Value> = fields
            .members
            .iter()
            .map(|id| json!({"value": id, "$ref": format!("{base}/Users/{id}")}))
            .collect();
        attributes.insert("members".into(), Value::Array(members));
    }
    attributes
}

/// What a provider sends as the group's fields. Members are Users, named by id.
fn fields(body: &Value) -> AppResult<GroupFields> {
    let object = body.as_object();
    let display_name = match patch::field(object, "displayName") {
        Some(Value::String(name)) => name.clone(),
        _ => return Err(AppError::invalid("displayName", "displayName is required, as a string.")),
    };
    let external_id = match patch::field(object, "externalId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err(AppError::invalid("externalId", "externalId must be a string.")),
    };
    let mut members = BTreeSet::new();
    match patch::field(object, "members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let member = item.as_object();
                if patch::field(member, "type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.eq_ignore_ascii_case("User"))
                {
                    return Err(AppError::invalid("members", "Members are Users: groups do not nest."));
                }
                let id: Option<UserId> = patch::field(member, "value")
                    .and_then(Value::as_str)
                    .and_then(|id| id.trim().parse().ok());
                members.insert(
                    id.ok_or_else(|| AppError::invalid("members", "Each member's value is a User's id."))?,
                );
            }
        }
        Some(_) => return Err(AppError::invalid("members", "members must be a list.")),
    }
    Ok(GroupFields { display_name, external_id, members })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_user_ids() {
        let id = "6f1c0c9e-2f7b-4d55-9d1c-0d3c7c1e8a11";
        let group =
            fields(&json!({"displayName": "Eng", "members": [{"value": id, "display": "Ada"}]})).unwrap();
        assert_eq!(group.members.into_iter().map(|m| m.to_string()).collect::<Vec<_>>(), vec![id]);
        let field_of = |body: Value| match fields(&body) {
            Err(AppError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field_of(json!({})), "displayName");
        assert_eq!(field_of(json!({"displayName": "g", "members": [{"value": "nope"}]})), "members");
        assert_eq!(
            field_of(json!({"displayName": "g", "members": [{"value": id, "type": "Group"}]})),
            "members"
        );
    }
}
