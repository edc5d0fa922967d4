//! Server functions of a workspace's service accounts (its Admins').

use leptos::prelude::*;

use crate::{
    error::AppError,
    ids::{ServiceAccountId, WorkspaceId},
    model::ServiceAccountView,
};

/// The workspace's live service accounts, oldest first.
#[server(prefix = "/_fn", endpoint = "service_accounts/list")]
pub async fn list_service_accounts(workspace_id: WorkspaceId) -> Result<Vec<ServiceAccountView>, AppError> {
    use crate::server::{request, service_accounts};
    let (state, me, org) = request::org_member().await?;
    let mut all = Vec::new();
    loop {
        let query = service_accounts::ServiceAccountQuery {
            workspace_id: Some(workspace_id),
            offset: all.len() as i64,
            limit: service_accounts::MAX_PAGE,
            ..Default::default()
        };
        let page = service_accounts::list(&state.db, &me, org.id, &query).await?;
        let last = page.len() < service_accounts::MAX_PAGE as usize;
        all.extend(page);
        if last {
            return Ok(all);
        }
    }
}

#[server(prefix = "/_fn", endpoint = "service_accounts/create")]
pub async fn create_service_account(
    workspace_id: WorkspaceId,
    name: String,
    #[server(default)] description: String,
) -> Result<ServiceAccountView, AppError> {
    use crate::{
        model::WorkspaceRole,
        server::{request, service_accounts},
    };
    let (state, me, org) = request::org_member().await?;
    let input = service_accounts::NewServiceAccount {
        workspace_id,
        name: name.trim().to_string(),
        description: Some(description),
        role: WorkspaceRole::Member,
    };
    service_accounts::create(&state.db, &me, &request::client(&state), org.id, input).await
}

#[server(prefix = "/_fn", endpoint = "service_accounts/delete")]
pub async fn delete_service_account(id: ServiceAccountId) -> Result<u64, AppError> {
    use crate::server::{request, service_accounts};
    let (state, me, org) = request::org_member().await?;
    service_accounts::delete(&state.db, &me, &request::client(&state), org.id, id).await
}
