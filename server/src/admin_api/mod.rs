//! The Admin API: `/api/admin/...` and the same routes under `/v1/admin/...`.
//!
//! Machines authenticate with an Admin API key in `x-api-key`; each key
//! administers exactly one Organization, and every handler is a thin adapter
//! over the domain functions the Admin Panel uses too. Errors are JSON:
//! `{"error": {"type", "code", "message", "param"}}`.

mod audit_logs;
mod auth;
mod error;
mod reference;
mod roles;
mod users;
mod workspaces;

use app::server::state::AppState;
use axum::{
    routing::{delete, get, patch, post},
    Json, Router,
};
use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
    Modify, OpenApi,
};

pub use auth::AdminKey;
pub use error::{ApiError, ApiJson, ApiQuery};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chancery Admin API",
        description = "Automates the administration of one Organization. Authenticate with an Admin API key \
                       (made in the Backoffice) in the `x-api-key` header. Every path also answers under `/v1/admin`."
    ),
    servers((url = "/api/admin"), (url = "/v1/admin")),
    paths(
        roles::list_roles,
        users::list_users,
        users::get_user,
        users::update_user,
        users::delete_user,
        users::invite_users,
        users::list_invites,
        users::revoke_invite,
        workspaces::list_workspaces,
        workspaces::get_workspace,
        workspaces::create_workspace,
        workspaces::update_workspace,
        workspaces::archive_workspace,
        workspaces::add_workspace_users,
        workspaces::put_workspace_users,
        workspaces::remove_workspace_users,
        audit_logs::list_audit_logs,
    ),
    modifiers(&ApiKeyHeader),
    security(("api_key" = [])),
    tags(
        (name = "roles", description = "The role catalogue"),
        (name = "users", description = "Members and invitations"),
        (name = "workspaces", description = "Workspaces of the Organization"),
        (name = "audit-logs", description = "Who changed what, when, from where"),
    )
)]
pub struct ApiDoc;

struct ApiKeyHeader;

impl Modify for ApiKeyHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
    }
}

/// The Admin API's routes, to be nested under both prefixes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/roles", get(roles::list_roles))
        .route("/users", get(users::list_users))
        .route("/users/{user_id}", get(users::get_user).patch(users::update_user).delete(users::delete_user))
        .route("/users-invite", get(users::list_invites).post(users::invite_users))
        .route("/users-invite/{invite_uuid}", delete(users::revoke_invite))
        .route("/workspaces", get(workspaces::list_workspaces).post(workspaces::create_workspace))
        .route(
            "/workspaces/{workspace_uuid}",
            get(workspaces::get_workspace)
                .patch(workspaces::update_workspace)
                .delete(workspaces::archive_workspace),
        )
        .route("/workspaces/{workspace_uuid}/add-users", post(workspaces::add_workspace_users))
        .route("/workspaces/{workspace_uuid}/users", patch(workspaces::put_workspace_users))
        .route("/workspaces/{workspace_uuid}/remove-users", delete(workspaces::remove_workspace_users))
        .route("/audit-logs", get(audit_logs::list_audit_logs))
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .route("/docs", get(reference::page))
        .fallback(|| async { ApiError(app::AppError::NotFound) })
}
