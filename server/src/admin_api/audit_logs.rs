//! `GET /audit-logs`: the Organization's audit log, newest first.

use app::{
    model::{AuditEntry, AuditQuery},
    server::{audit, state::AppState},
};
use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AdminKey, ApiError, ApiQuery};

#[derive(Serialize, ToSchema)]
pub struct AuditLogOut {
    pub log_id: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `HUMAN`, `API_KEY` or `OTHER` (the platform operator).
    pub actor_type: &'static str,
    /// `id` and `label` (email or key name) of the actor.
    pub actor_metadata: serde_json::Value,
    /// `resource[.sub].verb`, e.g. `user.log_in`.
    pub event_type: String,
    /// Before/after values and other facts of the event.
    pub event_metadata: serde_json::Value,
    /// `USER`, `ORGANIZATION`, `WORKSPACE`, `ADMIN_API_KEY`, ...
    pub target_type: String,
    pub target_metadata: serde_json::Value,
    pub ip: Option<String>,
}

impl From<AuditEntry> for AuditLogOut {
    fn from(e: AuditEntry) -> Self {
        Self {
            log_id: e.id,
            created_at: e.created_at.rfc3339(),
            actor_type: match e.actor_type.as_str() {
                "user" => "HUMAN",
                "admin_api_key" => "API_KEY",
                _ => "OTHER",
            },
            actor_metadata: serde_json::json!({ "id": e.actor_id, "label": e.actor_label }),
            event_type: e.action,
            event_metadata: e
                .details
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or_else(|| serde_json::json!({})),
            target_type: e.target_type.to_uppercase(),
            target_metadata: serde_json::json!({ "uuid": e.target_id }),
            ip: e.ip,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditLogsOut {
    pub items: Vec<AuditLogOut>,
    pub object: &'static str,
    pub page: i64,
    pub page_size: i64,
    pub total: i64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditLogsQuery {
    /// Part of the actor's email or key name, or an actor id.
    pub actor: Option<String>,
    /// An event type (`user.log_in`) or a prefix of one (`organization.`).
    pub event_type: Option<String>,
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    #[param(format = Date)]
    pub to: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<i64>,
}

/// List audit log events, newest first.
#[utoipa::path(get, path = "/audit-logs", tag = "audit-logs", params(AuditLogsQuery),
    responses((status = 200, body = AuditLogsOut), (status = 400, description = "Bad filter or paging"),
              (status = 401, description = "Missing, unknown, expired or revoked key")))]
pub async fn list_audit_logs(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(q): ApiQuery<AuditLogsQuery>,
) -> Result<Json<AuditLogsOut>, ApiError> {
    // The Admin Panel's form sends empty dates for "any"; here a date given is a date.
    for (field, day) in [("from", &q.from), ("to", &q.to)] {
        if day.as_deref().is_some_and(|day| day.trim().is_empty()) {
            return Err(app::AppError::invalid(field, format!("{field} is a day, YYYY-MM-DD.")).into());
        }
    }
    let query = AuditQuery {
        actor: q.actor.unwrap_or_default(),
        action: q.event_type.unwrap_or_default(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
    };
    let page = audit::search(&state.db, &key.actor, key.org_id, &query, q.page, q.page_size).await?;
    Ok(Json(AuditLogsOut {
        items: page.items.into_iter().map(Into::into).collect(),
        object: "list",
        page: page.page,
        page_size: page.page_size,
        total: page.total,
    }))
}
