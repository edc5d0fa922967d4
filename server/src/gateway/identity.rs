//! `/v1/whoami` and `/v1/users/me/workspaces` (Mistral's `beta.users`): whom a
//! workspace API key speaks for, and the workspaces they work in, inside the
//! key's Organization. `/v1/whoami` also names an Admin API key (in
//! `x-api-key` or as the bearer token) as a principal of its own.

use app::{
    server::{
        actor::Actor,
        admin_keys,
        identity::{self, Identity, Principal},
        state::AppState,
    },
    time::Timestamp,
    AppError,
};
use axum::{
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{bearer, Refused};
use crate::admin_api::{ApiError, ApiQuery};

/// An error in the Admin API's shape.
fn api(error: AppError) -> Response {
    ApiError(error).into_response()
}

/// A workspace key's identity, or the refusal the gateway gives a bad key.
async fn identity(state: &AppState, headers: &HeaderMap) -> Result<Identity, Refused> {
    let caller = state.gateway.authenticate(bearer(headers), Timestamp::now())?;
    identity::of_key(&state.db, caller.key_id).await.map_err(|_| {
        Refused(app::server::gateway::GatewayError::new(401, "invalid_api_key", "Unknown API key."))
    })
}

fn principal_json(principal: &Principal) -> Value {
    match principal {
        Principal::User { id, email, name } => {
            let (first, last) = name.split_once(' ').unwrap_or((name.as_str(), ""));
            json!({ "principal_type": "user", "id": id, "email": email,
                    "first_name": first, "last_name": (!last.is_empty()).then_some(last) })
        }
        Principal::ServiceAccount { id, name } => {
            json!({ "principal_type": "service_account", "service_account_id": id, "name": name })
        }
        Principal::ApiKey { id, name } => {
            json!({ "principal_type": "api_key", "api_key_id": id, "name": name })
        }
    }
}

pub async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Response> {
    let admin_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| bearer(&headers).filter(|k| k.trim().starts_with(admin_keys::PREFIX)));
    if let Some(presented) = admin_key {
        let actor = admin_keys::authenticate(&state.db, Some(presented)).await.map_err(api)?;
        let Actor::AdminApiKey { id, org_id, name } = actor else {
            return Err(api(AppError::Internal));
        };
        let org_name = app::server::orgs::name_of(&state.db, org_id).await.map_err(api)?;
        return Ok(Json(json!({
            "principal": { "principal_type": "api_key", "api_key_id": id, "name": name },
            "organization": { "id": org_id, "name": org_name },
            "workspace": null,
        })));
    }
    let identity = identity(&state, &headers).await.map_err(IntoResponse::into_response)?;
    Ok(Json(json!({
        "principal": principal_json(&identity.principal),
        "organization": { "id": identity.org.0, "name": identity.org.1 },
        "workspace": { "id": identity.workspace.0, "name": identity.workspace.1 },
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspacesQuery {
    pub organization_id: Option<String>,
    #[serde(default)]
    pub offset: i64,
    #[serde(default = "default_limit")]
    pub limit: i64,
}

fn default_limit() -> i64 {
    100
}

pub async fn my_workspaces(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<WorkspacesQuery>,
) -> Result<Json<Value>, Response> {
    if query.offset < 0 || !(1..=100).contains(&query.limit) {
        return Err(api(AppError::invalid("limit", "offset is 0 or more; limit is 1 to 100.")));
    }
    let identity = identity(&state, &headers).await.map_err(IntoResponse::into_response)?;
    let elsewhere = query.organization_id.as_deref().is_some_and(|org| org != identity.org.0.to_string());
    let workspaces = if elsewhere {
        Vec::new()
    } else {
        identity::workspaces_of(&state.db, &identity, query.offset, query.limit).await.map_err(api)?
    };
    let workspaces: Vec<Value> = workspaces
        .into_iter()
        .map(|(id, name)| json!({ "id": id, "name": name, "organization_id": identity.org.0 }))
        .collect();
    Ok(Json(json!({ "workspaces": workspaces })))
}
