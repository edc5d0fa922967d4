//! Verified domains: an Admin claims a domain for the Organization and proves
//! it by publishing a TXT record; the operator can verify one from the CLI for
//! installs without public DNS. A domain is verified by at most one
//! Organization. Single sign-on finds an Organization by its verified domains.

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz::{self, Authority},
    db::{is_unique_violation, Db},
    dns::Dns,
};
use crate::{
    error::{AppError, AppResult},
    ids::OrgId,
    model::DomainView,
    time::Timestamp,
    validate,
};

/// The name under the domain where the TXT record goes.
pub const CHALLENGE_LABEL: &str = "_chancery-challenge";
const RECORD_PREFIX: &str = "chancery-domain-verification=";

type DomainRow = (String, String, Timestamp, Option<Timestamp>, Option<String>);

fn view((domain, token, claimed_at, verified_at, verified_by): DomainRow) -> DomainView {
    DomainView {
        record_name: format!("{CHALLENGE_LABEL}.{domain}"),
        record_value: format!("{RECORD_PREFIX}{token}"),
        domain,
        claimed_at,
        verified_at,
        verified_by,
    }
}

/// A domain as people type it (`Example.COM.`, `@example.com`), checked and in
/// the form it is stored: lower case, without a trailing dot, ASCII labels.
pub fn normalize(input: &str) -> AppResult<String> {
    let domain = input.trim().trim_start_matches('@').trim_end_matches('.').to_ascii_lowercase();
    let invalid = |why: &str| AppError::invalid("domain", format!("{domain:?} is not a domain name: {why}."));
    if domain.is_empty() {
        return Err(AppError::invalid("domain", "Enter a domain, e.g. example.com."));
    }
    if !domain.is_ascii() {
        return Err(invalid("write an international name in its xn-- form"));
    }
    if domain.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid("it needs at least two labels, e.g. example.com"));
    }
    for label in &labels {
        let fits = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !fits {
            return Err(invalid("each label is 1 to 63 letters, digits or inner hyphens"));
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Err(invalid("an IP address is not a domain"));
    }
    Ok(domain)
}

/// Whether `email` is in one of the domains `org_id` verified: the addresses
/// whose people the Organization's identity provider speaks for.
pub(super) async fn verified_for(
    conn: &mut sqlx::AnyConnection,
    org_id: OrgId,
    email: &validate::Email,
) -> AppResult<bool> {
    let verified: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM org_domains WHERE org_id = $1 AND domain = $2 AND verified_at IS NOT NULL",
    )
    .bind(org_id)
    .bind(email.domain())
    .fetch_optional(conn)
    .await?;
    Ok(verified.is_some())
}

#[tracing::instrument(name = "domains::list", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn list(db: &Db, actor: &Actor, org_id: OrgId) -> AppResult<Vec<DomainView>> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let rows: Vec<DomainRow> = sqlx::query_as(
        "SELECT domain, token, claimed_at, verified_at, verified_by FROM org_domains
         WHERE org_id = $1 ORDER BY domain",
    )
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(view).collect())
}

/// Claims `domain` for the Organization: it is verified once its TXT record is published.
#[tracing::instrument(name = "domains::claim", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn claim(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    domain: &str,
) -> AppResult<DomainView> {
    let domain = normalize(domain)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    refuse_if_verified_elsewhere(&mut tx, org_id, &domain).await?;
    if !insert_claim(&mut tx, org_id, &domain).await? {
        return Err(AppError::conflict(
            "domain",
            format!("{domain} is already claimed by this Organization."),
        ));
    }
    let event = AuditEvent::new("organization.domain_claim", "domain", &domain).in_org(org_id);
    audit::record(&mut tx, &admin, client, event).await?;
    let row = one(&mut tx, org_id, &domain).await?.ok_or(AppError::Internal)?;
    tx.commit().await?;
    Ok(row)
}

/// Looks up the claimed domain's TXT record with `dns` and, if it holds the
/// token, marks the domain verified.
#[tracing::instrument(name = "domains::verify", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn verify(
    db: &Db,
    dns: Option<&Dns>,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    domain: &str,
) -> AppResult<DomainView> {
    let domain = normalize(domain)?;
    let claimed = {
        let mut conn = db.pool().acquire().await?;
        authz::org_admin(&mut conn, actor, org_id).await?;
        one(&mut conn, org_id, &domain).await?.ok_or(AppError::NotFound)?
    };
    if claimed.verified_at.is_some() {
        return Ok(claimed);
    }
    let dns = dns.ok_or_else(|| {
        AppError::BadRequest(
            "This server cannot look up DNS records; the operator can verify a domain with `chancery domains verify`."
                .into(),
        )
    })?;
    let published = dns.txt(&claimed.record_name).await.map_err(|error| {
        tracing::warn!(%error, domain, "a domain's TXT record could not be looked up");
        AppError::BadRequest(format!(
            "The DNS lookup of {} failed; try again in a moment.",
            claimed.record_name
        ))
    })?;
    if !published.iter().any(|txt| txt.trim() == claimed.record_value) {
        return Err(AppError::invalid(
            "domain",
            format!(
                "No TXT record {:?} at {} yet. DNS changes can take a while to show: try again later.",
                claimed.record_value, claimed.record_name
            ),
        ));
    }
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    mark_verified(&mut tx, &admin, client, org_id, &domain, "dns").await?;
    let row = one(&mut tx, org_id, &domain).await?.ok_or(AppError::Internal)?;
    tx.commit().await?;
    Ok(row)
}

/// The operator's override for installs without public DNS: claims and
/// verifies `domain` for the Organization at once.
#[tracing::instrument(name = "domains::verify_by_operator", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn verify_by_operator(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    domain: &str,
) -> AppResult<DomainView> {
    let operator = authz::operator(actor)?;
    let domain = normalize(domain)?;
    let mut tx = db.begin().await?;
    let (exists,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(&mut *tx)
        .await?;
    if exists == 0 {
        return Err(AppError::NotFound);
    }
    insert_claim(&mut tx, org_id, &domain).await?;
    mark_verified(&mut tx, &operator, &Client::default(), org_id, &domain, "operator").await?;
    let row = one(&mut tx, org_id, &domain).await?.ok_or(AppError::Internal)?;
    tx.commit().await?;
    Ok(row)
}

/// Gives up a claimed or verified domain.
#[tracing::instrument(name = "domains::remove", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn remove(db: &Db, actor: &Actor, client: &Client, org_id: OrgId, domain: &str) -> AppResult<()> {
    let domain = normalize(domain)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let removed = sqlx::query("DELETE FROM org_domains WHERE org_id = $1 AND domain = $2")
        .bind(org_id)
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
    if removed.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    let event = AuditEvent::new("organization.domain_remove", "domain", &domain).in_org(org_id);
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(())
}

async fn refuse_if_verified_elsewhere(
    conn: &mut sqlx::AnyConnection,
    org_id: OrgId,
    domain: &str,
) -> AppResult<()> {
    let (elsewhere,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM org_domains WHERE domain = $1 AND org_id <> $2 AND verified_at IS NOT NULL",
    )
    .bind(domain)
    .bind(org_id)
    .fetch_one(&mut *conn)
    .await?;
    if elsewhere > 0 {
        return Err(verified_elsewhere(domain));
    }
    Ok(())
}

fn verified_elsewhere(domain: &str) -> AppError {
    AppError::conflict("domain", format!("{domain} is verified by another Organization."))
}

async fn mark_verified(
    conn: &mut sqlx::AnyConnection,
    authority: &impl Authority,
    client: &Client,
    org_id: OrgId,
    domain: &str,
    by: &str,
) -> AppResult<()> {
    refuse_if_verified_elsewhere(conn, org_id, domain).await?;
    let verified = sqlx::query(
        "UPDATE org_domains SET verified_at = $1, verified_by = $2
         WHERE org_id = $3 AND domain = $4 AND verified_at IS NULL",
    )
    .bind(Timestamp::now())
    .bind(by)
    .bind(org_id)
    .bind(domain)
    .execute(&mut *conn)
    .await;
    match verified {
        // Two Organizations verifying at once: the unique index lets one through.
        Err(error) if is_unique_violation(&error) => return Err(verified_elsewhere(domain)),
        verified => {
            if verified?.rows_affected() == 0 {
                return Ok(());
            }
        }
    }
    let event = AuditEvent::new("organization.domain_verify", "domain", domain)
        .in_org(org_id)
        .with_details(serde_json::json!({ "verified_by": by }));
    audit::record(conn, authority, client, event).await?;
    Ok(())
}

/// Claims `domain` with a fresh token; false if the Organization had claimed it already.
async fn insert_claim(conn: &mut sqlx::AnyConnection, org_id: OrgId, domain: &str) -> AppResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO org_domains (org_id, domain, token, claimed_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (org_id, domain) DO NOTHING",
    )
    .bind(org_id)
    .bind(domain)
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(Timestamp::now())
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

async fn one(conn: &mut sqlx::AnyConnection, org_id: OrgId, domain: &str) -> AppResult<Option<DomainView>> {
    let row: Option<DomainRow> = sqlx::query_as(
        "SELECT domain, token, claimed_at, verified_at, verified_by FROM org_domains
         WHERE org_id = $1 AND domain = $2",
    )
    .bind(org_id)
    .bind(domain)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_stored_in_one_form_and_nonsense_is_refused_by_name() {
        assert_eq!(normalize(" @Example.COM. ").unwrap(), "example.com");
        assert_eq!(normalize("mail.xn--bcher-kva.example").unwrap(), "mail.xn--bcher-kva.example");
        for bad in
            ["", "localhost", "exa mple.com", "-x.com", "x-.com", "a..com", "bücher.example", "10.0.0.1"]
        {
            let error = normalize(bad).unwrap_err();
            assert_eq!(error.field(), Some("domain"), "{bad:?}");
        }
        assert!(normalize(&format!("{}.com", "a".repeat(64))).is_err());
    }
}
