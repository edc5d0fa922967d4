//! What single sign-on means whatever the protocol: how a session was signed
//! in, and an Organization's choice to require its identity provider.
//!
//! While an Organization requires single sign-on, its members whose email is
//! in one of its verified domains cannot log in with a password, and their
//! sessions started with one end (at once, and on their next request for any
//! that began later). Admins cannot lock themselves out: requiring it needs an
//! enabled provider and a verified domain, and an Admin it covers must have
//! signed in through the provider first. The operator's CLI lifts it
//! (`chancery sso allow-passwords`) when the provider is gone.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz::{self, Authority},
    db::Db,
};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, UserId},
    model::{OrgRole, SsoEnforcement},
    time::Timestamp,
};

/// What a person sees when their password no longer opens Chancery.
pub const SSO_REQUIRED: &str =
    "Your organization requires single sign-on: log in with \u{201c}Continue with SSO\u{201d}.";

/// How a session was signed in (kept in the session and beside its record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignInMethod {
    Password,
    Oidc,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Oidc => "oidc",
        }
    }

    pub fn is_single_sign_on(self) -> bool {
        self != Self::Password
    }
}

/// Joins `org_members m` and `users u` to the verified domains `d` of the
/// member's Organization that hold the member's email: those an Organization
/// requiring single sign-on covers.
const COVERED_BY_DOMAIN: &str = "JOIN users u ON u.id = m.user_id
     JOIN org_domains d ON d.org_id = m.org_id AND d.verified_at IS NOT NULL
                       AND u.email_normalized LIKE ('%@' || d.domain)";

/// The Organization, if any, whose single sign-on `user_id` must use instead of a password.
pub async fn required_of(conn: &mut AnyConnection, user_id: UserId) -> AppResult<Option<OrgId>> {
    let sql = format!(
        "SELECT m.org_id FROM org_members m {COVERED_BY_DOMAIN}
         JOIN organizations o ON o.id = m.org_id
         WHERE m.user_id = $1 AND o.sso_enforced_at IS NOT NULL LIMIT 1"
    );
    let row: Option<(OrgId,)> = sqlx::query_as(&sql).bind(user_id).fetch_optional(&mut *conn).await?;
    Ok(row.map(|(org,)| org))
}

/// Whether a session signed in `via` may go on: password sessions of people
/// who must use single sign-on may not.
pub async fn session_may_continue(db: &Db, user_id: UserId, via: SignInMethod) -> AppResult<bool> {
    if via.is_single_sign_on() {
        return Ok(true);
    }
    let mut conn = db.pool().acquire().await?;
    Ok(required_of(&mut conn, user_id).await?.is_none())
}

async fn enforcement_of(conn: &mut AnyConnection, org_id: OrgId) -> AppResult<SsoEnforcement> {
    let (required_since,): (Option<Timestamp>,) =
        sqlx::query_as("SELECT sso_enforced_at FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(AppError::NotFound)?;
    let domains: Vec<(String,)> = sqlx::query_as(
        "SELECT domain FROM org_domains WHERE org_id = $1 AND verified_at IS NOT NULL ORDER BY domain",
    )
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?;
    let (provider_enabled,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM org_oidc WHERE org_id = $1 AND enabled_at IS NOT NULL)
              + (SELECT COUNT(*) FROM org_saml WHERE org_id = $1 AND enabled_at IS NOT NULL)",
    )
    .bind(org_id)
    .fetch_one(&mut *conn)
    .await?;
    let sql = format!(
        "SELECT COUNT(DISTINCT m.user_id) FROM org_members m {COVERED_BY_DOMAIN} WHERE m.org_id = $1"
    );
    let (members_covered,): (i64,) = sqlx::query_as(&sql).bind(org_id).fetch_one(&mut *conn).await?;
    Ok(SsoEnforcement {
        org_id,
        required_since,
        verified_domains: domains.into_iter().map(|(domain,)| domain).collect(),
        provider_enabled: provider_enabled > 0,
        members_covered,
    })
}

/// The Organization's choice, for its Admins.
pub async fn enforcement(db: &Db, actor: &Actor, org_id: OrgId) -> AppResult<SsoEnforcement> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    enforcement_of(&mut conn, org_id).await
}

/// Requires single sign-on of the members in the Organization's verified
/// domains and ends their password sessions. `signed_in_via` is how the
/// acting Admin's own session began.
pub async fn require(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    signed_in_via: SignInMethod,
) -> AppResult<SsoEnforcement> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let before = enforcement_of(&mut tx, org_id).await?;
    if before.required_since.is_some() {
        return Ok(before);
    }
    if !before.provider_enabled {
        return Err(AppError::invalid(
            "sso",
            "Set up and turn on your identity provider first: nobody could log in otherwise.",
        ));
    }
    if before.verified_domains.is_empty() {
        return Err(AppError::invalid(
            "sso",
            "Verify your email domain first: single sign-on is required of the members in verified domains.",
        ));
    }
    if let Actor::User { id, .. } = actor {
        if covers(&mut tx, org_id, *id).await? && !signed_in_via.is_single_sign_on() {
            return Err(AppError::invalid(
                "sso",
                "Log in with \u{201c}Continue with SSO\u{201d} once before requiring it, so you know it works for you.",
            ));
        }
    }
    sqlx::query("UPDATE organizations SET sso_enforced_at = $1 WHERE id = $2")
        .bind(Timestamp::now())
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let sql = format!(
        "DELETE FROM sessions WHERE (via IS NULL OR via = 'password') AND user_id IN
             (SELECT m.user_id FROM org_members m {COVERED_BY_DOMAIN} WHERE m.org_id = $1)"
    );
    let ended = sqlx::query(&sql).bind(org_id).execute(&mut *tx).await?.rows_affected();
    let details = serde_json::json!({
        "domains": before.verified_domains,
        "members_covered": before.members_covered,
        "password_sessions_ended": ended,
    });
    let event = AuditEvent::new("organization.sso_enforce", "organization", org_id).in_org(org_id);
    audit::record(&mut tx, &admin, client, event.with_details(details)).await?;
    let after = enforcement_of(&mut tx, org_id).await?;
    tx.commit().await?;
    tracing::info!(org_id = %org_id, password_sessions_ended = ended, "single sign-on required");
    Ok(after)
}

/// Whether the Organization's requirement (on or not yet) covers member `user_id`.
async fn covers(conn: &mut AnyConnection, org_id: OrgId, user_id: UserId) -> AppResult<bool> {
    let sql =
        format!("SELECT 1 FROM org_members m {COVERED_BY_DOMAIN} WHERE m.org_id = $1 AND m.user_id = $2");
    let row: Option<(i64,)> =
        sqlx::query_as(&sql).bind(org_id).bind(user_id).fetch_optional(&mut *conn).await?;
    Ok(row.is_some())
}

/// Lets the Organization's members log in with passwords again: by one of its
/// Admins, or by the operator (the break-glass path when the provider is gone).
pub async fn allow_passwords(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
) -> AppResult<SsoEnforcement> {
    let mut tx = db.begin().await?;
    match actor {
        Actor::Operator => {
            let operator = authz::operator(actor)?;
            stop_requiring(&mut tx, &operator, client, org_id).await?;
        }
        _ => {
            let admin = authz::org_admin(&mut tx, actor, org_id).await?;
            stop_requiring(&mut tx, &admin, client, org_id).await?;
        }
    }
    let after = enforcement_of(&mut tx, org_id).await?;
    tx.commit().await?;
    Ok(after)
}

async fn stop_requiring(
    conn: &mut AnyConnection,
    by: &impl Authority,
    client: &Client,
    org_id: OrgId,
) -> AppResult<()> {
    let changed = sqlx::query(
        "UPDATE organizations SET sso_enforced_at = NULL WHERE id = $1 AND sso_enforced_at IS NOT NULL",
    )
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    if changed.rows_affected() == 1 {
        let event = AuditEvent::new("organization.sso_unenforce", "organization", org_id).in_org(org_id);
        audit::record(&mut *conn, by, client, event).await?;
    } else {
        // Unknown Organizations are told apart from ones that did not require it.
        enforcement_of(conn, org_id).await?;
    }
    Ok(())
}

/// Refuses to turn off the last way members covered by the requirement can log in.
pub(super) async fn refuse_if_required(
    conn: &mut AnyConnection,
    org_id: OrgId,
    field: &str,
) -> AppResult<()> {
    let (required,): (Option<Timestamp>,) =
        sqlx::query_as("SELECT sso_enforced_at FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(&mut *conn)
            .await?;
    if required.is_some() {
        return Err(AppError::invalid(
            field,
            "Your members must log in through this provider: stop requiring single sign-on first.",
        ));
    }
    Ok(())
}

/// The role people get when their first single sign-on makes them members:
/// never Admin (Admins are made in Members, by Admins).
pub(super) fn default_role(input: &str) -> AppResult<OrgRole> {
    match OrgRole::parse(input.trim()) {
        Some(role @ (OrgRole::Member | OrgRole::Billing)) => Ok(role),
        Some(OrgRole::Admin) => Err(AppError::invalid(
            "default_role",
            "New members cannot join as Admins: choose Member or Billing, and make Admins in Members.",
        )),
        None => Err(AppError::invalid("default_role", "Choose Member or Billing.")),
    }
}

/// An identity provider's address as Admins type it: `https://`, or `http://`
/// on this machine only (tests, labs); no query or fragment. Kept as typed
/// (less a trailing slash): issuers are compared as strings.
pub(super) fn provider_url(field: &str, input: &str, example: &str) -> AppResult<String> {
    let text = input.trim().trim_end_matches('/');
    let invalid = |why: String| AppError::invalid(field, why);
    let url = url::Url::parse(text).map_err(|_| invalid(format!("Enter a URL, e.g. {example}.")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(invalid("The URL must start with https://.".into())),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("The URL has no query or fragment.".into()));
    }
    Ok(text.to_string())
}

/// The protocols an Organization's identity provider speaks; one is on at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Protocol {
    Oidc,
    Saml,
}

impl Protocol {
    fn table(self) -> &'static str {
        match self {
            Self::Oidc => "org_oidc",
            Self::Saml => "org_saml",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Oidc => "OpenID Connect",
            Self::Saml => "SAML",
        }
    }

    fn other(self) -> Self {
        match self {
            Self::Oidc => Self::Saml,
            Self::Saml => Self::Oidc,
        }
    }
}

/// Refuses to turn on a `protocol` provider while the Organization's other one
/// is on: one way in per Organization, so nobody wonders which one applies.
pub(super) async fn refuse_if_other_provider_on(
    conn: &mut AnyConnection,
    org_id: OrgId,
    protocol: Protocol,
) -> AppResult<()> {
    let other = protocol.other();
    let sql = format!("SELECT COUNT(*) FROM {} WHERE org_id = $1 AND enabled_at IS NOT NULL", other.table());
    let (on,): (i64,) = sqlx::query_as(&sql).bind(org_id).fetch_one(&mut *conn).await?;
    if on > 0 {
        return Err(AppError::invalid(
            "enabled",
            format!("Turn off {} first: one identity provider is on at a time.", other.name()),
        ));
    }
    Ok(())
}

/// Forgets the Organization's `protocol` provider (not while single sign-on is required).
pub(super) async fn remove_provider(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    protocol: Protocol,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    refuse_if_required(&mut tx, org_id, "sso").await?;
    let sql = format!("DELETE FROM {} WHERE org_id = $1", protocol.table());
    let removed = sqlx::query(&sql).bind(org_id).execute(&mut *tx).await?;
    if removed.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    let action = match protocol {
        Protocol::Oidc => "organization.oidc_remove",
        Protocol::Saml => "organization.saml_remove",
    };
    let event = AuditEvent::new(action, "organization", org_id).in_org(org_id);
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(())
}
