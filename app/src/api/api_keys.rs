//! Server functions of a workspace's API keys (on the workspace's page).

use leptos::prelude::*;

use crate::{
    error::AppError,
    ids::{ApiKeyId, WorkspaceId},
    model::{ApiKeyView, CreatedApiKey, Slice},
};

/// One page of a workspace's keys, newest first, past `after` (the last key
/// of the page before).
#[server(prefix = "/_fn", endpoint = "api_keys")]
pub async fn list_workspace_keys(
    workspace_id: WorkspaceId,
    after: Option<ApiKeyId>,
) -> Result<Slice<ApiKeyView>, AppError> {
    use crate::server::{api_keys, request};
    let (state, me, org) = request::org_member().await?;
    api_keys::workspace_page(&state.db, &me, org.id, workspace_id, after).await
}

/// `allowed_models`: model ids separated by commas or spaces; empty allows what the workspace allows.
/// `requests_per_minute`: the key's own limit; empty for only the workspace's.
/// `service_account_id`: the service account the key is for (Admins only); empty for the caller.
#[server(prefix = "/_fn", endpoint = "api_keys/create")]
pub async fn create_workspace_key(
    workspace_id: WorkspaceId,
    name: String,
    expires_on: String,
    allowed_models: String,
    #[server(default)] requests_per_minute: String,
    #[server(default)] service_account_id: String,
) -> Result<CreatedApiKey, AppError> {
    use crate::{
        server::{api_keys, request},
        validate,
    };
    let (state, me, org) = request::org_member().await?;
    let input = api_keys::NewApiKey {
        name,
        expires_on,
        allowed_models: validate::model_list(&allowed_models),
        requests_per_minute: validate::optional_count("requests_per_minute", &requests_per_minute)?,
        owner: None,
        service_account: match service_account_id.trim() {
            "" => None,
            id => Some(id.parse().map_err(|_| AppError::NotFound)?),
        },
    };
    let created =
        api_keys::create(&state.db, &me, &request::client(&state), org.id, workspace_id, input).await?;
    request::show_once(&state, &created.view.name, &created.key).await?;
    Ok(created)
}

#[server(prefix = "/_fn", endpoint = "api_keys/revoke")]
pub async fn revoke_workspace_key(key_id: ApiKeyId) -> Result<(), AppError> {
    use crate::server::{api_keys, request};
    let (state, me, org) = request::org_member().await?;
    api_keys::revoke(&state.db, &me, &request::client(&state), org.id, key_id).await
}

#[server(prefix = "/_fn", endpoint = "api_keys/rotate")]
pub async fn rotate_workspace_key(key_id: ApiKeyId, grace_hours: String) -> Result<CreatedApiKey, AppError> {
    use crate::server::{api_keys, request};
    let (state, me, org) = request::org_member().await?;
    let grace = match grace_hours.trim() {
        "" => api_keys::DEFAULT_GRACE_HOURS,
        text => text
            .parse()
            .map_err(|_| AppError::invalid("grace_hours", "Enter the grace period in whole hours."))?,
    };
    let rotated = api_keys::rotate(&state.db, &me, &request::client(&state), org.id, key_id, grace).await?;
    request::show_once(&state, &rotated.view.name, &rotated.key).await?;
    Ok(rotated)
}
