//! `GET /audit-logs`: the Organization's audit log, as Mistral's Admin API
//! shapes it (a bare array, filters by actor, event and target type, time bounds).

use app::{
    ids::UserId,
    model::AuditEntry,
    server::{
        audit::{self, AuditFilter, Window},
        audit_chain::{self, ChainHead, ChainRecord, ChainedEvent, Checkpoint, TamperKind},
        state::AppState,
    },
    time::Timestamp,
    AppError,
};
use axum::{
    extract::{OriginalUri, State},
    http::{header, HeaderValue, Uri},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

use super::{error::comma_list, AdminKey, ApiError, ApiQuery};

#[derive(Serialize, ToSchema)]
pub struct AuditLogOut {
    pub log_id: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub actor_type: AuditActorType,
    /// `user_uuid` and `email` of a person, `api_key_id` and `name` of an Admin
    /// API key; `label` always.
    pub actor_metadata: BTreeMap<String, String>,
    /// One of the catalogue's event types (see the docs page).
    pub event_type: String,
    /// Before/after values and other facts of the event; values that are not
    /// text are written as JSON.
    pub event_metadata: BTreeMap<String, String>,
    /// `USER`, `ORGANIZATION`, `WORKSPACE`, `ADMIN_API_KEY`, ...
    pub target_type: String,
    /// `uuid` of the target, and `user_uuid` / `workspace_uuid` /
    /// `organization_uuid` for those target types.
    pub target_metadata: BTreeMap<String, String>,
    pub organization_uuid: String,
    /// The workspace the event concerns, when there is one.
    pub workspace_uuid: Option<String>,
    /// The client address the change came from, when known.
    pub ip: Option<String>,
}

/// Who acted: a person, an Admin API key, or anything else (the platform
/// operator, an identity provider's SCIM token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditActorType {
    Human,
    ApiKey,
    Other,
}

impl AuditLogOut {
    fn new(org_id: String, e: AuditEntry) -> Self {
        let actor_type = audit::actor_type(&e.actor_type);
        let id = e.actor_id.clone().unwrap_or_default();
        let mut actor_metadata = BTreeMap::from([("label".to_string(), e.actor_label.clone())]);
        match actor_type {
            "HUMAN" if e.actor_id.is_some() => {
                actor_metadata.insert("user_uuid".into(), id);
                actor_metadata.insert("email".into(), e.actor_label);
            }
            "API_KEY" => {
                actor_metadata.insert("api_key_id".into(), id);
            }
            _ => {}
        }
        let event_metadata: BTreeMap<String, String> = e
            .details
            .and_then(|d| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&d).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(text) => (key, text),
                other => (key, other.to_string()),
            })
            .collect();
        let target_type = e.target_type.to_uppercase();
        let mut target_metadata = BTreeMap::new();
        if let Some(target) = &e.target_id {
            target_metadata.insert("uuid".to_string(), target.clone());
            let named = match target_type.as_str() {
                "USER" => Some("user_uuid"),
                "WORKSPACE" | "WORKSPACE_MONTHLY_LIMIT" => Some("workspace_uuid"),
                "ORGANIZATION" => Some("organization_uuid"),
                _ => None,
            };
            if let Some(named) = named {
                target_metadata.insert(named.to_string(), target.clone());
            }
        }
        let workspace_uuid =
            target_metadata.get("workspace_uuid").or_else(|| event_metadata.get("workspace_id")).cloned();
        Self {
            log_id: e.id,
            created_at: e.created_at.rfc3339(),
            actor_type: match actor_type {
                "HUMAN" => AuditActorType::Human,
                "API_KEY" => AuditActorType::ApiKey,
                _ => AuditActorType::Other,
            },
            actor_metadata,
            event_type: e.action,
            event_metadata,
            target_type,
            target_metadata,
            organization_uuid: org_id,
            workspace_uuid,
            ip: e.ip,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditLogsQuery {
    /// Only events by these kinds of actor (repeat it for several; `actor_type[]` also reads).
    #[serde(default, rename = "actor_type", deserialize_with = "comma_list")]
    #[param(value_type = Option<Vec<AuditActorType>>)]
    pub actor_types: Vec<String>,
    /// Only these event types (the catalogue is on the docs page); a value that
    /// is not one matches the types it begins (`organization.`). Repeat it for
    /// several; `event_type[]` also reads.
    #[serde(default, rename = "event_type", deserialize_with = "comma_list")]
    #[param(value_type = Option<Vec<String>>, pattern = "^[a-z_.]{1,100}$")]
    pub event_types: Vec<String>,
    /// Only events on these target types (`USER`, `WORKSPACE`, ...). Repeat it
    /// for several; `target_type[]` also reads.
    #[serde(default, rename = "target_type", deserialize_with = "comma_list")]
    #[param(value_type = Option<Vec<String>>, pattern = "^[A-Za-z_]{1,100}$")]
    pub target_types: Vec<String>,
    /// Only events by this person.
    #[param(format = Uuid)]
    pub actor_user_uuid: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub after: Option<String>,
    /// Events before this time (RFC 3339).
    #[param(format = DateTime)]
    pub before: Option<String>,
    /// `desc` (newest first, the default) or `asc`.
    #[param(value_type = Option<AuditSort>, inline)]
    pub sort: Option<String>,
    /// At most this many events, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Where the previous answer ended: its `Link: rel="next"` header carries
    /// it (the `log_id` of its last event; any other number is a 400).
    #[param(minimum = 0)]
    pub cursor: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AuditSort {
    Desc,
    Asc,
}

const DEFAULT_LIMIT: i64 = 50;

/// List audit log events, newest first. When more may follow, the `Link`
/// header's `rel="next"` address lists them.
#[utoipa::path(get, path = "/audit-logs", tag = "audit-logs", params(AuditLogsQuery),
    responses((status = 200, body = Vec<AuditLogOut>, description = "The events, a bare array",
               headers(("link" = String, description = "`<...>; rel=\"next\"` when more events may follow")))))]
pub async fn list_audit_logs(
    State(state): State<AppState>,
    key: AdminKey,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<AuditLogsQuery>,
) -> Result<Response, ApiError> {
    let moment = |field: &str, text: &Option<String>| -> Result<Option<Timestamp>, ApiError> {
        let Some(text) = text else { return Ok(None) };
        let at = chrono::DateTime::parse_from_rfc3339(text.trim()).map_err(|_| {
            AppError::invalid(field, format!("{field} is a date-time, e.g. 2026-01-31T12:00:00Z."))
        })?;
        Ok(Some(Timestamp(at.timestamp_millis())))
    };
    let actor_id = match q.actor_user_uuid {
        Some(id) => Some(
            id.trim()
                .parse::<UserId>()
                .map_err(|_| AppError::invalid("actor_user_uuid", "Not a user id."))?
                .to_string(),
        ),
        None => None,
    };
    let filter = AuditFilter {
        actor_types: q.actor_types,
        actor_id,
        event_types: q.event_types,
        target_types: q.target_types,
        after: moment("after", &q.after)?,
        before: moment("before", &q.before)?,
        ..AuditFilter::default()
    };
    let oldest_first = match q.sort.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(AppError::invalid("sort", "sort is desc or asc.").into()),
    };
    let window = Window { cursor: q.cursor, limit: q.limit.unwrap_or(DEFAULT_LIMIT), oldest_first };
    let entries = audit::list(&state.db, &key.actor, key.org_id, &filter, window).await?;
    let next = (entries.len() as i64 == window.limit).then(|| entries.last().map(|e| e.id)).flatten();
    let org = key.org_id.to_string();
    let items: Vec<AuditLogOut> = entries.into_iter().map(|e| AuditLogOut::new(org.clone(), e)).collect();
    let mut response = Json(items).into_response();
    if let Some(link) = next.and_then(|cursor| HeaderValue::from_str(&next_link(&uri, cursor)).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// `<path?query with cursor>; rel="next"` (RFC 8288), the request's own filters kept.
fn next_link(uri: &Uri, cursor: i64) -> String {
    let kept = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .filter(|(name, _)| name != "cursor")
        .collect::<Vec<_>>();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .append_pair("cursor", &cursor.to_string())
        .finish();
    format!("<{}?{query}>; rel=\"next\"", uri.path())
}

/// What checking the Organization's audit chain found.
#[derive(Serialize, ToSchema)]
pub struct AuditVerificationOut {
    pub organization_uuid: String,
    /// No event modified, deleted, inserted or reordered, and every checkpoint passed through.
    pub intact: bool,
    /// Events in the chain.
    pub events: usize,
    /// Signed checkpoints the chain passes through.
    pub checkpoints_verified: usize,
    /// The newest of them: the event it signed, and when (RFC 3339).
    pub last_checkpoint_log_seq: Option<i64>,
    pub last_checkpoint_at: Option<String>,
    /// Whether the checkpoints' signatures were checked (the server knows the operator's key).
    pub signatures_checked: bool,
    /// The first break found.
    pub problem: Option<AuditTamperOut>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditTamperOut {
    /// `modified`, `deleted`, `inserted`, `reordered`, `rewritten` or `bad_checkpoint`.
    #[schema(value_type = String)]
    pub kind: TamperKind,
    /// The place in the chain where it breaks.
    pub seq: i64,
    /// The event at fault (`log_id`), when there is one.
    pub log_id: Option<i64>,
    pub message: String,
}

/// Check the audit log: each event's link to the one before, and the chain
/// against the checkpoints the operator's key signed. Names the first event
/// modified, deleted, inserted or reordered.
#[utoipa::path(get, path = "/audit-logs/verify", tag = "audit-logs",
    responses((status = 200, body = AuditVerificationOut, description = "What the check found (`intact`)")))]
pub async fn verify_audit_logs(
    State(state): State<AppState>,
    key: AdminKey,
) -> Result<Json<AuditVerificationOut>, ApiError> {
    let report = audit_chain::verify_org(&state.db, &key.actor, key.org_id, state.audit_key.as_ref()).await?;
    Ok(Json(AuditVerificationOut {
        organization_uuid: key.org_id.to_string(),
        intact: report.problem.is_none(),
        events: report.events,
        checkpoints_verified: report.checkpoints_verified,
        last_checkpoint_log_seq: report.last_checkpoint.as_ref().map(|c| c.seq),
        last_checkpoint_at: report.last_checkpoint.as_ref().map(|c| Timestamp(c.signed_at).rfc3339()),
        signatures_checked: report.signatures_checked,
        problem: report.problem.map(|p| AuditTamperOut {
            kind: p.kind,
            seq: p.seq,
            log_id: p.event_id,
            message: p.message,
        }),
    }))
}

/// The Organization's whole audit chain with its signed checkpoints, to keep
/// and verify elsewhere: `chancery audit verify --file export.json --public-key ...`.
#[derive(Serialize, ToSchema)]
pub struct AuditExportOut {
    /// The Organization's id.
    pub chain: String,
    /// Every event, oldest first, with its place (`chain_seq`) and hash (`chain_hash`).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<ChainedEvent>,
    /// The chain's newest place and hash: `{"seq": ..., "hash": ...}`.
    #[schema(value_type = Option<Object>)]
    pub head: Option<ChainHead>,
    /// The heads signed with the operator's key.
    #[schema(value_type = Vec<Object>)]
    pub checkpoints: Vec<Checkpoint>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditExportQuery {
    /// `json` (the default) or `csv`: three tables (events, head, checkpoints),
    /// each under its header line; both verify offline.
    #[param(value_type = Option<AuditExportFormat>, inline)]
    pub format: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AuditExportFormat {
    Json,
    Csv,
}

/// Export the audit log as a chain that verifies offline, as JSON or CSV.
#[utoipa::path(get, path = "/audit-logs/export", tag = "audit-logs", params(AuditExportQuery),
    responses((status = 200, description = "The chain and its checkpoints",
               content((AuditExportOut = "application/json"), (String = "text/csv")))))]
pub async fn export_audit_logs(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(q): ApiQuery<AuditExportQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref().map(str::trim) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(AppError::invalid("format", "format is json or csv.").into()),
    };
    let record = audit_chain::org_chain(&state.db, &key.actor, key.org_id).await?;
    if csv {
        let filename = format!("attachment; filename=\"audit-chain-{}.csv\"", key.org_id);
        let headers = [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, filename),
        ];
        return Ok((headers, record.to_csv()).into_response());
    }
    let ChainRecord { chain, events, head, checkpoints } = record;
    Ok(Json(AuditExportOut { chain, events, head, checkpoints }).into_response())
}
