//! `GET /usage`: time buckets grouped by workspace, model or key (OpenAI's
//! usage shape), or one month per model (Mistral's, with `month` and `year`).
//! Costs are integer micro-USD (`cost_micros`) with `currency: "USD"`.

use app::{
    model::{UsageGroupBy, UsageReport, UsageRow, UsageWidth},
    server::{state::AppState, usage},
    time::Timestamp,
    AppError,
};
use axum::{extract::State, Json};
use chrono::{TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;

use super::{AdminKey, ApiError, ApiQuery};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQueryIn {
    /// Unix seconds or RFC 3339 (inclusive). Required unless `month` and `year` are given.
    #[param(
        pattern = r"^([0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$"
    )]
    pub start_time: Option<String>,
    /// Unix seconds or RFC 3339 (exclusive); default now.
    #[param(
        pattern = r"^([0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$"
    )]
    pub end_time: Option<String>,
    /// `1h` or `1d` (default).
    #[param(pattern = r"^(1h|1d)$")]
    pub bucket_width: Option<String>,
    /// `workspace_id`, `model` or `api_key_id`.
    #[param(pattern = r"^(workspace_id|model|api_key_id)$")]
    pub group_by: Option<String>,
    pub workspace_id: Option<uuid::Uuid>,
    /// With `year`: Mistral's monthly summary per model.
    #[param(minimum = 1, maximum = 12)]
    pub month: Option<u32>,
    #[param(minimum = 2000, maximum = 9999)]
    pub year: Option<i32>,
}

fn instant(field: &str, text: &str) -> Result<Timestamp, AppError> {
    if let Ok(seconds) = text.trim().parse::<i64>() {
        return Ok(Timestamp(seconds.saturating_mul(1000)));
    }
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| Timestamp(t.timestamp_millis()))
        .map_err(|_| AppError::invalid(field, format!("{field} is Unix seconds or an RFC 3339 time.")))
}

fn result(row: &UsageRow, group_by: Option<UsageGroupBy>) -> Value {
    let mut out = json!({
        "object": "organization.usage.result",
        "num_model_requests": row.requests,
        "failed_requests": row.failed,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cost_micros": row.cost_micros,
        "currency": "USD",
    });
    let field = match group_by {
        Some(UsageGroupBy::Workspace) => Some("workspace_id"),
        Some(UsageGroupBy::Model) => Some("model"),
        Some(UsageGroupBy::Key) => Some("api_key_id"),
        None => None,
    };
    if let Some(field) = field {
        out[field] = json!(row.group_id);
        out["name"] = json!(row.group_name);
    }
    out
}

fn buckets(report: &UsageReport, group_by: Option<UsageGroupBy>) -> Value {
    let data: Vec<Value> = report
        .buckets
        .iter()
        .map(|b| {
            json!({
                "object": "bucket",
                "start_time": b.start.0 / 1000,
                "end_time": b.end.0 / 1000,
                "results": b.rows.iter().map(|r| result(r, group_by)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "object": "page", "data": data, "has_more": false, "next_page": null })
}

/// Usage over time, bucketed and grouped; or one month per model.
#[utoipa::path(get, path = "/usage", tag = "billing", params(UsageQueryIn),
    responses((status = 200, description = "`{object: \"page\", data: [{start_time, end_time, results}]}`, or Mistral's monthly shape"),
              (status = 400, description = "Bad time range or grouping")))]
pub async fn get_usage(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(query): ApiQuery<UsageQueryIn>,
) -> Result<Json<Value>, ApiError> {
    let workspace_id = query.workspace_id.map(|w| w.to_string());
    if let (Some(month), Some(year)) = (query.month, query.year) {
        // One period, said one way: a month (summed per model), or times (in buckets).
        for (field, given) in [
            ("start_time", &query.start_time),
            ("end_time", &query.end_time),
            ("bucket_width", &query.bucket_width),
            ("group_by", &query.group_by),
        ] {
            if given.is_some() {
                return Err(
                    AppError::invalid(field, format!("Give month and year, or {field}, not both.")).into()
                );
            }
        }
        let start = Utc
            .with_ymd_and_hms(year, month, 1, 0, 0, 0)
            .single()
            .ok_or_else(|| AppError::invalid("month", "month is 1 to 12."))?;
        let next = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        let end = Utc.with_ymd_and_hms(next.0, next.1, 1, 0, 0, 0).single().ok_or(AppError::Internal)?;
        let query = usage::UsageQuery {
            start: Timestamp(start.timestamp_millis()),
            end: Timestamp(end.timestamp_millis()),
            width: UsageWidth::Day,
            group_by: Some(UsageGroupBy::Model),
            workspace_id,
        };
        let report = usage::report(&state.db, &key.actor, key.org_id, &query).await?;
        let models: Map<String, Value> = report
            .totals
            .iter()
            .map(|r| {
                let usage = json!({
                    "num_requests": r.requests, "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens, "cost_micros": r.cost_micros,
                });
                (r.group_id.clone(), usage)
            })
            .collect();
        return Ok(Json(json!({
            "date": format!("{year}-{month:02}"),
            "start_date": start.date_naive().to_string(),
            "end_date": (end - chrono::Duration::days(1)).date_naive().to_string(),
            "previous_month": format!("{}-{:02}", if month == 1 { year - 1 } else { year }, if month == 1 { 12 } else { month - 1 }),
            "next_month": format!("{}-{:02}", next.0, next.1),
            "currency": "USD",
            "currency_symbol": "$",
            "completion": { "models": models },
        })));
    }
    let start = query
        .start_time
        .as_deref()
        .ok_or_else(|| AppError::invalid("start_time", "start_time is required."))?;
    let start = instant("start_time", start)?;
    let end = match query.end_time.as_deref() {
        Some(text) => instant("end_time", text)?,
        None => Timestamp::now(),
    };
    let width = match query.bucket_width.as_deref() {
        None => UsageWidth::Day,
        Some(text) => UsageWidth::parse(text)
            .ok_or_else(|| AppError::invalid("bucket_width", "bucket_width is 1h or 1d."))?,
    };
    let group_by = match query.group_by.as_deref() {
        None | Some("") => None,
        Some(text) => Some(UsageGroupBy::parse(text).ok_or_else(|| {
            AppError::invalid("group_by", "group_by is workspace_id, model or api_key_id.")
        })?),
    };
    let report = usage::report(
        &state.db,
        &key.actor,
        key.org_id,
        &usage::UsageQuery { start, end, width, group_by, workspace_id },
    )
    .await?;
    Ok(Json(buckets(&report, group_by)))
}
