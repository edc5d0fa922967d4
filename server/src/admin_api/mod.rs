//! The Admin API: `/api/admin/...` and the same routes under `/v1/admin/...`.
//!
//! Machines authenticate with an Admin API key in `x-api-key`; each key
//! administers exactly one Organization, and every handler is a thin adapter
//! over the domain functions the Admin Panel uses too. Errors are JSON:
//! `{"error": {"type", "code", "message", "param"}}`.

mod admin_keys;
mod api_keys;
mod audit_logs;
mod auth;
mod billing;
mod domains;
mod error;
mod reference;
mod roles;
mod service_accounts;
mod usage;
mod user_groups;
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
pub use error::{ApiError, ApiJson, ApiJsonArray, ApiQuery};

/// An id from the path. A malformed one names nothing: 404, as an unknown one.
fn path_id<T: std::str::FromStr>(text: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError(app::AppError::NotFound))
}

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
        users::provision_users,
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
        workspaces::restore_workspace,
        workspaces::add_workspace_users,
        workspaces::put_workspace_users,
        workspaces::remove_workspace_users,
        user_groups::list_groups,
        user_groups::create_group,
        user_groups::get_group,
        user_groups::update_group,
        user_groups::delete_group,
        user_groups::set_organization_role,
        user_groups::list_nested,
        user_groups::set_nested,
        user_groups::list_members,
        user_groups::add_members,
        user_groups::remove_members,
        user_groups::list_workspaces,
        user_groups::add_workspace,
        user_groups::update_workspace,
        user_groups::remove_workspace,
        user_groups::provision_workspace,
        api_keys::list_keys,
        api_keys::create_key,
        api_keys::revoke_key,
        api_keys::rotate_key,
        admin_keys::list_admin_keys,
        admin_keys::revoke_admin_key,
        billing::get_billing,
        api_keys::get_key_policy,
        api_keys::set_key_policy,
        billing::get_spend_limit,
        billing::set_spend_limit,
        billing::get_rate_limit,
        billing::set_rate_limit,
        billing::list_models,
        usage::get_usage,
        audit_logs::list_audit_logs,
        audit_logs::verify_audit_logs,
        audit_logs::export_audit_logs,
        domains::list_domains,
        domains::claim_domain,
        domains::verify_domain,
        domains::remove_domain,
    ),
    modifiers(&ApiKeyHeader, &StandardAnswers),
    security(("api_key" = [])),
    tags(
        (name = "roles", description = "The role catalogue"),
        (name = "users", description = "Members and invitations"),
        (name = "workspaces", description = "Workspaces of the Organization"),
        (name = "user-groups", description = "Groups of members and the workspaces they grant"),
        (name = "api-keys", description = "Workspace API keys, which call the gateway"),
        (name = "admin-api-keys", description = "The Admin API keys that administer this Organization"),
        (name = "billing", description = "Billing status, spending limits, rate limits and model prices"),
        (name = "audit-logs", description = "Who changed what, when, from where"),
        (name = "domains", description = "Verified domains, which single sign-on finds the Organization by"),
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

/// What every operation has without each handler saying it: the path
/// parameters its path names, and the errors any of them can answer, in the
/// shared error shape (401 for a bad key; 400 where it takes input; 404 where
/// it names a resource or takes input that may; 413 for a body over the limit).
struct StandardAnswers;

impl Modify for StandardAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            path::{Parameter, ParameterBuilder, ParameterIn},
            schema::{ObjectBuilder, Type},
            ContentBuilder, Ref, Required, ResponseBuilder,
        };
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let error = ObjectBuilder::new()
            .property(
                "error",
                ObjectBuilder::new()
                    .property("type", text())
                    .property("code", text())
                    .property("message", text())
                    .property(
                        "param",
                        ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                            Type::String,
                            Type::Null,
                        ])),
                    )
                    .required("type")
                    .required("code")
                    .required("message"),
            )
            .required("error");
        openapi.components.get_or_insert_with(Default::default).schemas.insert("Error".into(), error.into());
        let answer = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let named: Vec<&str> =
                path.split('/').filter_map(|part| part.strip_prefix('{')?.strip_suffix('}')).collect();
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let parameters = operation.parameters.get_or_insert_with(Vec::new);
                for name in &named {
                    let declared =
                        parameters.iter().any(|p| p.name == *name && p.parameter_in == ParameterIn::Path);
                    if !declared {
                        let parameter: Parameter = ParameterBuilder::new()
                            .name(*name)
                            .parameter_in(ParameterIn::Path)
                            .required(Required::True)
                            .schema(Some(text()))
                            .build();
                        parameters.push(parameter);
                    }
                }
                let takes_input = operation.request_body.is_some()
                    || parameters.iter().any(|p| p.parameter_in == ParameterIn::Query);
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses.entry(status.to_string()).or_insert_with(|| answer(description).into());
                };
                add("401", "Missing, unknown, revoked or expired Admin API key.");
                if takes_input {
                    add("400", "Bad input: the error's `param` names the field.");
                }
                if !named.is_empty() || takes_input {
                    add("404", "Nothing by that id (in the path, query or body) in this Organization.");
                }
                if operation.request_body.is_some() {
                    add("413", "The body is over 1 MiB.");
                }
            }
        }
    }
}

/// The Admin API's routes, to be nested under both prefixes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/roles", get(roles::list_roles))
        .route("/users", get(users::list_users).post(users::provision_users))
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
        .route("/workspaces/{workspace_uuid}/restore", post(workspaces::restore_workspace))
        .route("/workspaces/{workspace_uuid}/add-users", post(workspaces::add_workspace_users))
        .route("/workspaces/{workspace_uuid}/users", patch(workspaces::put_workspace_users))
        .route("/workspaces/{workspace_uuid}/remove-users", delete(workspaces::remove_workspace_users))
        .route("/user-groups", get(user_groups::list_groups).post(user_groups::create_group))
        .route("/user-groups/provision-workspace", post(user_groups::provision_workspace))
        .route("/user-groups/{group_uuid}/organization-role", patch(user_groups::set_organization_role))
        .route(
            "/user-groups/{group_uuid}/nested",
            get(user_groups::list_nested).patch(user_groups::set_nested),
        )
        .route(
            "/user-groups/{group_uuid}",
            get(user_groups::get_group).patch(user_groups::update_group).delete(user_groups::delete_group),
        )
        .route(
            "/user-groups/{group_uuid}/members",
            get(user_groups::list_members).post(user_groups::add_members).delete(user_groups::remove_members),
        )
        .route(
            "/user-groups/{group_uuid}/workspaces",
            get(user_groups::list_workspaces).post(user_groups::add_workspace),
        )
        .route(
            "/user-groups/{group_uuid}/workspaces/{workspace_uuid}",
            patch(user_groups::update_workspace).delete(user_groups::remove_workspace),
        )
        .route("/api-keys", get(api_keys::list_keys).post(api_keys::create_key))
        .route("/api-keys/{key_id}", delete(api_keys::revoke_key))
        .route("/api-keys/{key_id}/rotate", post(api_keys::rotate_key))
        .route("/admin-api-keys", get(admin_keys::list_admin_keys))
        .route("/admin-api-keys/{key_id}", delete(admin_keys::revoke_admin_key))
        .route("/billing", get(billing::get_billing))
        .route("/api-key-policy", get(api_keys::get_key_policy).post(api_keys::set_key_policy))
        .route("/spend-limit", get(billing::get_spend_limit).post(billing::set_spend_limit))
        .route("/rate-limit", get(billing::get_rate_limit).post(billing::set_rate_limit))
        .route("/models", get(billing::list_models))
        .route("/usage", get(usage::get_usage))
        .route("/audit-logs", get(audit_logs::list_audit_logs))
        .route("/audit-logs/verify", get(audit_logs::verify_audit_logs))
        .route("/audit-logs/export", get(audit_logs::export_audit_logs))
        .route("/domains", get(domains::list_domains).post(domains::claim_domain))
        .route("/domains/{domain}", delete(domains::remove_domain))
        .route("/domains/{domain}/verify", post(domains::verify_domain))
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .route("/docs", get(reference::page))
        .fallback(|| async { ApiError(app::AppError::NotFound) })
}

/// Mistral's `/v1/service-accounts`, beside the gateway: for Admin API keys.
pub fn service_account_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/service-accounts", get(service_accounts::list).post(service_accounts::create))
        .route("/v1/service-accounts/assignable-roles", get(service_accounts::assignable_roles))
        .route(
            "/v1/service-accounts/{id}",
            get(service_accounts::get_one).patch(service_accounts::update).delete(service_accounts::delete),
        )
        .route(
            "/v1/service-accounts/{id}/roles",
            get(service_accounts::list_roles).put(service_accounts::set_roles),
        )
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    /// The document clients are generated from changes only on purpose: a change
    /// shows here as a diff of `server/openapi.json`, rewritten with
    /// `CHANCERY_UPDATE_OPENAPI=1 cargo test -p server --lib openapi` and reviewed.
    #[test]
    fn the_openapi_document_changes_only_on_purpose() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let current = serde_json::to_string_pretty(&super::ApiDoc::openapi()).unwrap() + "\n";
        if std::env::var_os("CHANCERY_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == current,
            "The Admin API's OpenAPI document changed. If that is intended, run \
             `CHANCERY_UPDATE_OPENAPI=1 cargo test -p server --lib openapi` and commit server/openapi.json."
        );
    }
}
