//! `/domains`: the Organization's verified domains, as in Admin Panel > Settings.

use app::{
    model::DomainView,
    server::{domains, state::AppState},
    time::Timestamp,
};
use axum::{
    extract::{Path, State},
    Json,
};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminKey, ApiError, ApiJson};

#[derive(Serialize, ToSchema)]
pub struct DomainOut {
    pub domain: String,
    /// Where the TXT record goes.
    pub record_name: String,
    /// What the TXT record must say.
    pub record_value: String,
    /// RFC 3339, UTC.
    pub claimed_at: String,
    pub verified_at: Option<String>,
    /// `dns` or `operator`.
    pub verified_by: Option<String>,
}

impl From<DomainView> for DomainOut {
    fn from(domain: DomainView) -> Self {
        Self {
            domain: domain.domain,
            record_name: domain.record_name,
            record_value: domain.record_value,
            claimed_at: domain.claimed_at.rfc3339(),
            verified_at: domain.verified_at.map(Timestamp::rfc3339),
            verified_by: domain.verified_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DomainsOut {
    pub data: Vec<DomainOut>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainIn {
    /// e.g. `example.com`.
    #[schema(
        min_length = 3,
        max_length = 253,
        pattern = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
    )]
    pub domain: String,
}

/// List the domains this Organization claimed, verified or not.
#[utoipa::path(get, path = "/domains", tag = "domains",
    responses((status = 200, body = DomainsOut), (status = 401, description = "Missing, unknown, expired or revoked key")))]
pub async fn list_domains(
    State(state): State<AppState>,
    key: AdminKey,
) -> Result<Json<DomainsOut>, ApiError> {
    let domains = domains::list(&state.db, &key.actor, key.org_id).await?;
    Ok(Json(DomainsOut { data: domains.into_iter().map(Into::into).collect() }))
}

/// Claim a domain: publish the TXT record of the answer, then verify it.
#[utoipa::path(post, path = "/domains", tag = "domains", request_body = DomainIn,
    responses((status = 201, body = DomainOut), (status = 400, description = "Not a domain name"),
        (status = 401, description = "Missing, unknown, expired or revoked key"),
        (status = 409, description = "Already claimed here, or verified by another Organization")))]
pub async fn claim_domain(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<DomainIn>,
) -> Result<(StatusCode, Json<DomainOut>), ApiError> {
    let claimed = domains::claim(&state.db, &key.actor, &key.client, key.org_id, &body.domain).await?;
    Ok((StatusCode::CREATED, Json(claimed.into())))
}

/// A domain in the path: what is not a domain names nothing here (404).
fn claimed(domain: &str) -> Result<String, ApiError> {
    domains::normalize(domain).map_err(|_| ApiError(app::AppError::NotFound))
}

/// Verify a claimed domain by its TXT record.
#[utoipa::path(post, path = "/domains/{domain}/verify", tag = "domains",
    params(("domain" = String, Path, description = "The claimed domain")),
    responses((status = 200, body = DomainOut), (status = 400, description = "The TXT record is not published (yet)"),
        (status = 401, description = "Missing, unknown, expired or revoked key"),
        (status = 404, description = "Not claimed by this Organization"),
        (status = 409, description = "Verified by another Organization")))]
pub async fn verify_domain(
    State(state): State<AppState>,
    key: AdminKey,
    Path(domain): Path<String>,
) -> Result<Json<DomainOut>, ApiError> {
    let domain = claimed(&domain)?;
    let verified =
        domains::verify(&state.db, state.dns.as_ref(), &key.actor, &key.client, key.org_id, &domain).await?;
    Ok(Json(verified.into()))
}

/// Give up a domain, verified or not.
#[utoipa::path(delete, path = "/domains/{domain}", tag = "domains",
    params(("domain" = String, Path, description = "The claimed domain")),
    responses((status = 204, description = "Removed"), (status = 401, description = "Missing, unknown, expired or revoked key"),
        (status = 404, description = "Not claimed by this Organization")))]
pub async fn remove_domain(
    State(state): State<AppState>,
    key: AdminKey,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    let domain = claimed(&domain)?;
    domains::remove(&state.db, &key.actor, &key.client, key.org_id, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
