//! The audit log: append-only events, written in the transaction of the change
//! they describe, so a change and its record land together or not at all.

use sqlx::AnyConnection;

use super::actor::{Actor, Client};
use crate::{ids::OrgId, time::Timestamp};

/// One event. `action` follows `resource[.sub].verb`, e.g. `organization.create`.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub org_id: Option<OrgId>,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: Option<String>,
    /// Before/after values or other facts, as a JSON object.
    pub details: Option<serde_json::Value>,
}

impl AuditEvent {
    pub fn new(action: &'static str, target_type: &'static str, target_id: impl ToString) -> Self {
        Self { org_id: None, action, target_type, target_id: Some(target_id.to_string()), details: None }
    }

    pub fn in_org(mut self, org_id: OrgId) -> Self {
        self.org_id = Some(org_id);
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

pub async fn record(
    conn: &mut AnyConnection,
    actor: &Actor,
    client: &Client,
    event: AuditEvent,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events
             (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, details, ip, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(event.org_id)
    .bind(actor.kind())
    .bind(actor.id())
    .bind(actor.label())
    .bind(event.action)
    .bind(event.target_type)
    .bind(event.target_id)
    .bind(event.details.map(|d| d.to_string()))
    .bind(client.ip.clone())
    .bind(Timestamp::now())
    .execute(conn)
    .await?;
    Ok(())
}
