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
    accounts,
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz::{self, Authority},
    db::Db,
    domains, groups, members, oidc, recovery, saml,
};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, UserId},
    model::{CurrentUser, OrgRole, SsoEnforcement},
    time::Timestamp,
    validate,
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
    Saml,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Oidc => "oidc",
            Self::Saml => "saml",
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
#[tracing::instrument(name = "sso::session_may_continue", skip_all, fields(user_id = %user_id), err(level = "debug"))]
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
#[tracing::instrument(name = "sso::enforcement", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn enforcement(db: &Db, actor: &Actor, org_id: OrgId) -> AppResult<SsoEnforcement> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    enforcement_of(&mut conn, org_id).await
}

/// Requires single sign-on of the members in the Organization's verified
/// domains and ends their password sessions. `signed_in_via` is how the
/// acting Admin's own session began.
#[tracing::instrument(name = "sso::require", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
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
#[tracing::instrument(name = "sso::allow_passwords", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
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

/// How a provider's default role is stored when nobody is made a member at log-in.
const NO_DEFAULT_ROLE: &str = "none";

/// The role people get when their first single sign-on makes them members:
/// never Admin (Admins are made in Members, by Admins); `None` when nobody is
/// made a member at log-in (just-in-time membership off: people are invited first).
pub(super) fn default_role(input: &str) -> AppResult<Option<OrgRole>> {
    match OrgRole::parse(input.trim()) {
        _ if input.trim() == NO_DEFAULT_ROLE => Ok(None),
        Some(role @ (OrgRole::Member | OrgRole::Billing)) => Ok(Some(role)),
        Some(OrgRole::Admin) => Err(AppError::invalid(
            "default_role",
            "New members cannot join as Admins: choose Member or Billing, and make Admins in Members.",
        )),
        None => Err(AppError::invalid("default_role", "Choose Member, Billing or none.")),
    }
}

/// A default role as stored and audited.
pub(super) fn default_role_text(role: Option<OrgRole>) -> &'static str {
    role.map_or(NO_DEFAULT_ROLE, OrgRole::as_str)
}

/// A stored default role (`None` for none, or anything unreadable: nobody is let in by it).
pub(super) fn stored_default_role(text: &str) -> Option<OrgRole> {
    OrgRole::parse(text).filter(|role| *role != OrgRole::Admin)
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
pub enum Protocol {
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

    fn sign_in_method(self) -> SignInMethod {
        match self {
            Self::Oidc => SignInMethod::Oidc,
            Self::Saml => SignInMethod::Saml,
        }
    }

    /// The audit action of `event` for this protocol's provider.
    fn action(self, event: ProviderEvent) -> &'static str {
        match (self, event) {
            (Self::Oidc, ProviderEvent::Remove) => "organization.oidc_remove",
            (Self::Saml, ProviderEvent::Remove) => "organization.saml_remove",
            (Self::Oidc, ProviderEvent::LogInRefused) => "organization.oidc_login_refused",
            (Self::Saml, ProviderEvent::LogInRefused) => "organization.saml_login_refused",
            (Self::Oidc, ProviderEvent::MemberJoin) => "organization.oidc_member_join",
            (Self::Saml, ProviderEvent::MemberJoin) => "organization.saml_member_join",
        }
    }
}

#[derive(Clone, Copy)]
enum ProviderEvent {
    Remove,
    LogInRefused,
    MemberJoin,
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
    let event =
        AuditEvent::new(protocol.action(ProviderEvent::Remove), "organization", org_id).in_org(org_id);
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(())
}

/// A log-in through an identity provider, under way: what the browser's
/// session keeps while the person is at their provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "lowercase")]
pub enum Pending {
    Oidc(oidc::Pending),
    Saml(saml::Pending),
}

/// Where to send someone who asked to log in with single sign-on as `email`:
/// to the provider of the Organization that verified the email's domain.
#[tracing::instrument(name = "sso::start", skip_all, err(level = "debug"))]
pub async fn start(db: &Db, public_url: &str, email: &str) -> AppResult<(String, Pending)> {
    let email = validate::email(email)?;
    let domain = email.domain().to_string();
    let provider: Option<(OrgId, i64, i64)> = sqlx::query_as(
        "SELECT d.org_id,
                (SELECT COUNT(*) FROM org_oidc o WHERE o.org_id = d.org_id AND o.enabled_at IS NOT NULL),
                (SELECT COUNT(*) FROM org_saml s WHERE s.org_id = d.org_id AND s.enabled_at IS NOT NULL)
         FROM org_domains d WHERE d.domain = $1 AND d.verified_at IS NOT NULL",
    )
    .bind(&domain)
    .fetch_optional(db.pool())
    .await?;
    match provider {
        Some((org_id, 1.., _)) => {
            let (url, pending) = oidc::start(db, public_url, org_id, email).await?;
            Ok((url, Pending::Oidc(pending)))
        }
        Some((org_id, _, 1..)) => {
            let (url, pending) = saml::start(db, public_url, org_id, email).await?;
            Ok((url, Pending::Saml(pending)))
        }
        _ => Err(AppError::invalid(
            "email",
            format!("Single sign-on is not set up for {domain}. Log in with your password."),
        )),
    }
}

/// Someone an identity provider vouched for, now signed in.
#[derive(Debug)]
pub struct SignedIn {
    pub user: CurrentUser,
    pub org_id: OrgId,
    pub via: SignInMethod,
}

/// What a provider's verified answer says about the person.
pub(super) struct Identity {
    pub email: validate::Email,
    pub name: String,
    /// The person's groups at the provider, when the Organization follows them.
    pub groups: Option<Vec<String>>,
}

/// Why a log-in through a provider was refused: `reason` for the audit log,
/// `message` for the person.
#[derive(Debug)]
pub(super) struct Refusal {
    pub reason: String,
    pub message: &'static str,
}

impl Refusal {
    pub fn new(reason: impl Into<String>, message: &'static str) -> Self {
        Self { reason: reason.into(), message }
    }

    /// The provider's answer did not prove who this is.
    pub fn unverified(reason: impl Into<String>) -> Self {
        Self::new(reason, "Single sign-on failed: your identity provider's answer could not be verified. Try again, or ask your Admin.")
    }
}

/// A provider is trusted for its Organization's verified domains only: it
/// cannot sign anyone in as another Organization's people.
pub(super) async fn refuse_unless_verified_here(
    db: &Db,
    org_id: OrgId,
    email: &validate::Email,
) -> Result<(), Refusal> {
    let verified_here = match db.pool().acquire().await {
        Ok(mut conn) => domains::verified_for(&mut conn, org_id, email).await,
        Err(err) => Err(err.into()),
    };
    match verified_here {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal::new(
            format!("{} is not in a domain this Organization verified", email.display),
            "Your identity provider signed you in with an address your organization has not verified.",
        )),
        Err(err) => Err(Refusal::new(format!("database: {err}"), "Single sign-on failed. Try again.")),
    }
}

/// Ends a log-in through the Organization's provider: the person the provider
/// vouched for is signed in (see `admit`), or the refusal is audited in the
/// Organization and the error to show returned. `claimed_email` is who the
/// person said they were when they started, if known.
pub(super) async fn sign_in(
    db: &Db,
    client: &Client,
    org_id: OrgId,
    protocol: Protocol,
    default_role: Option<OrgRole>,
    claimed_email: &str,
    verified: Result<Identity, Refusal>,
) -> AppResult<SignedIn> {
    let refusal = match verified {
        Ok(identity) => match admit(db, client, org_id, protocol, default_role, identity).await? {
            Ok(signed_in) => return Ok(signed_in),
            Err(refusal) => refusal,
        },
        Err(refusal) => refusal,
    };
    Err(refuse(db, client, org_id, protocol, claimed_email, refusal).await?)
}

/// Records a refused log-in in the Organization's audit log; the error to show.
async fn refuse(
    db: &Db,
    client: &Client,
    org_id: OrgId,
    protocol: Protocol,
    claimed_email: &str,
    refusal: Refusal,
) -> AppResult<AppError> {
    tracing::warn!(org_id = %org_id, protocol = protocol.name(), reason = %refusal.reason, "single sign-on refused");
    let mut tx = db.begin().await?;
    let event = AuditEvent::new(protocol.action(ProviderEvent::LogInRefused), "organization", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "reason": refusal.reason }));
    audit::record(&mut tx, &authz::sign_in_attempt(claimed_email), client, event).await?;
    tx.commit().await?;
    Ok(AppError::Unauthenticated(refusal.message.into()))
}

/// Signs in the person the provider vouched for: their account and membership
/// (with the provider's `default_role`) are made on their first visit, and
/// their groups follow the provider's when it sends them. Without a default
/// role only members get in.
async fn admit(
    db: &Db,
    client: &Client,
    org_id: OrgId,
    protocol: Protocol,
    default_role: Option<OrgRole>,
    identity: Identity,
) -> AppResult<Result<SignedIn, Refusal>> {
    let via = protocol.sign_in_method();
    let mut tx = db.begin().await?;
    let existing: Option<(UserId, String, String)> =
        sqlx::query_as("SELECT id, name, email FROM users WHERE email_normalized = $1")
            .bind(&identity.email.normalized)
            .fetch_optional(&mut *tx)
            .await?;
    let member: Option<(i64,)> = match &existing {
        Some((id, _, _)) => {
            sqlx::query_as("SELECT 1 FROM org_members WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(*id)
                .fetch_optional(&mut *tx)
                .await?
        }
        None => None,
    };
    let default_role = match (member, default_role) {
        (Some(_), _) => None,
        (None, Some(role)) => Some(role),
        (None, None) => {
            return Ok(Err(Refusal::new(
                format!("{} is not a member, and nobody is made a member at log-in", identity.email.display),
                "You are not a member of this organization yet: ask one of its Admins to invite you.",
            )))
        }
    };
    let is_new = existing.is_none();
    let user = match existing {
        Some((id, name, email)) => CurrentUser { id, name, email },
        None => {
            let name = validate::person_name(&identity.name)
                .or_else(|_| validate::person_name(&identity.email.display))?;
            accounts::create_without_password(&mut tx, client, name, &identity.email, via.as_str()).await?
        }
    };
    let person = authz::own_account(user.id, &user.email);
    // The provider proves the address: an account someone else made with it is taken back.
    if is_new {
        recovery::mark_verified(&mut tx, &person, client, user.id, via.as_str()).await?;
    } else {
        recovery::reclaim_for_owner(&mut tx, &person, client, user.id, via.as_str()).await?;
    }
    let joined = match default_role {
        Some(role) => members::join(&mut tx, org_id, user.id, &[role]).await?.then_some(role),
        None => None,
    };
    if let Some(role) = joined {
        let event = AuditEvent::new(protocol.action(ProviderEvent::MemberJoin), "user", user.id)
            .in_org(org_id)
            .with_details(serde_json::json!({ "role": role.as_str() }));
        audit::record(&mut tx, &person, client, event).await?;
    }
    if let Some(groups) = &identity.groups {
        let directory = authz::directory_sync(org_id, &person);
        groups::follow_directory(&mut tx, &directory, client, user.id, groups).await?;
    }
    accounts::record_log_in(&mut tx, &person, client, user.id, via).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, org_id = %org_id, via = via.as_str(), "signed in through an identity provider");
    Ok(Ok(SignedIn { user, org_id, via }))
}
