//! Accounts: sign-up and log-in.

use std::time::Instant;

use sqlx::{AnyConnection, FromRow};

use super::{
    actor::Client,
    audit::{self, AuditEvent},
    authz::{self, Authority, OwnAccount},
    db::{is_unique_violation, Db},
    password, recovery,
    sso::{self, SignInMethod},
    throttle::Throttle,
};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, UserId},
    model::{CurrentUser, SignUpPolicy},
    time::Timestamp,
    validate,
};

/// Deliberately the same for an unknown email and a wrong password.
pub const BAD_CREDENTIALS: &str = "Email or password is incorrect.";

/// The stored "hash" of an account that has no password (made by single
/// sign-on): not a PHC string, so no password ever matches it.
pub(super) const NO_PASSWORD: &str = "!";

#[derive(Clone, Debug)]
pub struct SignUp {
    pub name: String,
    pub email: String,
    pub password: String,
}

#[derive(FromRow)]
struct UserRow {
    id: UserId,
    name: String,
    email: String,
}

impl From<UserRow> for CurrentUser {
    fn from(row: UserRow) -> Self {
        Self { id: row.id, name: row.name, email: row.email }
    }
}

/// Someone signs up on their own (not from an invitation), if the operator's
/// `policy` lets them: at most `SIGN_UPS_PER_CLIENT` accounts an hour from one
/// address. Their address is to be proven by the link emailed to it.
#[tracing::instrument(name = "accounts::open_sign_up", skip_all, err(level = "debug"))]
pub async fn open_sign_up(
    db: &Db,
    throttle: &Throttle,
    policy: &SignUpPolicy,
    client: &Client,
    public_url: &str,
    input: SignUp,
) -> AppResult<CurrentUser> {
    refuse_unless_allowed(policy, &validate::email(&input.email)?)?;
    if let Err(wait) = throttle.sign_up(client.ip.as_deref(), Instant::now()) {
        return Err(AppError::TooManyRequests {
            message: "Too many accounts were created from your address. Try again later.".into(),
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let (name, email, password_hash) = checked(input).await?;
    let mut tx = db.begin().await?;
    let user = create(&mut tx, client, name, &email, &password_hash, SignInMethod::Password.as_str()).await?;
    // In the same transaction: no account is left without its link.
    recovery::send_verification(&mut tx, public_url, user.id, &user.email).await?;
    tx.commit().await?;
    Ok(user)
}

fn refuse_unless_allowed(policy: &SignUpPolicy, email: &validate::Email) -> AppResult<()> {
    let domain = email.normalized.rsplit_once('@').map_or("", |(_, domain)| domain);
    match policy {
        SignUpPolicy::Open => Ok(()),
        SignUpPolicy::InviteOnly => Err(AppError::BadRequest(SignUpPolicy::INVITE_ONLY.into())),
        SignUpPolicy::Domains(domains) if domains.iter().any(|allowed| allowed == domain) => Ok(()),
        SignUpPolicy::Domains(domains) => Err(AppError::invalid(
            "email",
            format!("Accounts here are for addresses at {}; others join by invitation.", domains.join(", ")),
        )),
    }
}

/// Creates an account (from an invitation, whose link proves the address).
/// The new person is the actor of their own `user.create` event.
#[tracing::instrument(name = "accounts::sign_up", skip_all, err(level = "debug"))]
pub async fn sign_up(db: &Db, client: &Client, input: SignUp) -> AppResult<CurrentUser> {
    let (name, email, password_hash) = checked(input).await?;
    let mut tx = db.begin().await?;
    let user = create(&mut tx, client, name, &email, &password_hash, SignInMethod::Password.as_str()).await?;
    tx.commit().await?;
    Ok(user)
}

/// A sign-up's name, address and password hash, checked (hashed before any
/// transaction: it is slow).
async fn checked(input: SignUp) -> AppResult<(String, validate::Email, String)> {
    let name = validate::person_name(&input.name)?;
    let email = validate::email(&input.email)?;
    validate::new_password("password", &input.password)?;
    Ok((name, email, password::hash(input.password).await?))
}

/// Checks credentials. Failures are throttled per account and per client
/// address, and never say whether the email or the password was wrong. The
/// right password of someone who must use single sign-on is refused too, and
/// says so (only to whoever knows the password).
#[tracing::instrument(name = "accounts::log_in", skip_all, err(level = "debug"))]
pub async fn log_in(
    db: &Db,
    throttle: &Throttle,
    client: &Client,
    email: &str,
    password: String,
) -> AppResult<CurrentUser> {
    let email = validate::email(email)?;
    let now = Instant::now();
    let attempt = match throttle.begin(&email.normalized, client.ip.as_deref(), now) {
        Ok(attempt) => attempt,
        Err(wait) => {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            return Err(AppError::TooManyRequests {
                message: format!("Too many failed log-in attempts. Try again in {minutes} minute(s)."),
                retry_after_secs: wait.as_secs().max(1),
            });
        }
    };

    let row: Option<(UserId, String, String, String)> =
        sqlx::query_as("SELECT id, name, email, password_hash FROM users WHERE email_normalized = $1")
            .bind(&email.normalized)
            .fetch_optional(db.pool())
            .await?;
    let stored_hash = row.as_ref().map(|(_, _, _, hash)| hash.clone()).filter(|hash| hash != NO_PASSWORD);
    let verified = password::verify(password, stored_hash).await;

    let Some((id, name, stored_email, _)) = row else {
        attempt.failed(now);
        return Err(AppError::Unauthenticated(BAD_CREDENTIALS.into()));
    };
    let person = authz::own_account(id, &stored_email);
    let mut tx = db.begin().await?;
    let outcome = if !verified {
        record_in_each_org(&mut tx, &person, client, id, "user.log_in_failed", None).await?;
        attempt.failed(now);
        Err(AppError::Unauthenticated(BAD_CREDENTIALS.into()))
    } else if sso::required_of(&mut tx, id).await?.is_some() {
        let details = serde_json::json!({ "reason": "single sign-on required" });
        record_in_each_org(&mut tx, &person, client, id, "user.log_in_failed", Some(details)).await?;
        attempt.succeeded();
        Err(AppError::Unauthenticated(sso::SSO_REQUIRED.into()))
    } else {
        record_log_in(&mut tx, &person, client, id, SignInMethod::Password).await?;
        attempt.succeeded();
        Ok(CurrentUser { id, name, email: stored_email })
    };
    tx.commit().await?;
    outcome
}

/// Records a log-in, `via` a password or single sign-on, and when it happened.
pub(super) async fn record_log_in(
    conn: &mut AnyConnection,
    person: &OwnAccount,
    client: &Client,
    user_id: UserId,
    via: SignInMethod,
) -> AppResult<()> {
    let details = serde_json::json!({ "via": via.as_str() });
    record_in_each_org(conn, person, client, user_id, "user.log_in", Some(details)).await?;
    sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
        .bind(Timestamp::now())
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One event per Organization of the person, so each one's log shows its
/// members' log-ins; a single one outside any.
pub(super) async fn record_in_each_org(
    conn: &mut AnyConnection,
    person: &impl Authority,
    client: &Client,
    user_id: UserId,
    action: &'static str,
    details: Option<serde_json::Value>,
) -> AppResult<()> {
    let orgs: Vec<(OrgId,)> = sqlx::query_as("SELECT org_id FROM org_members WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut events: Vec<AuditEvent> =
        orgs.iter().map(|(org,)| AuditEvent::new(action, "user", user_id).in_org(*org)).collect();
    if events.is_empty() {
        events.push(AuditEvent::new(action, "user", user_id));
    }
    for mut event in events {
        event.details = details.clone();
        audit::record(&mut *conn, person, client, event).await?;
    }
    Ok(())
}

/// Creates the account of someone an identity provider vouched for or
/// provisioned (`via`: `oidc`, `saml`, `scim`): no password, so they log in
/// through the provider, or set one through a password reset.
pub(super) async fn create_without_password(
    conn: &mut AnyConnection,
    client: &Client,
    name: String,
    email: &validate::Email,
    via: &'static str,
) -> AppResult<CurrentUser> {
    create(conn, client, name, email, NO_PASSWORD, via).await
}

/// Writes a new account and its `user.create` event, its owner the actor.
async fn create(
    conn: &mut AnyConnection,
    client: &Client,
    name: String,
    email: &validate::Email,
    password_hash: &str,
    via: &'static str,
) -> AppResult<CurrentUser> {
    let user = CurrentUser { id: UserId::new(), name, email: email.display.clone() };
    let inserted = sqlx::query(
        "INSERT INTO users (id, name, email, email_normalized, password_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user.id)
    .bind(&user.name)
    .bind(&user.email)
    .bind(&email.normalized)
    .bind(password_hash)
    .bind(Timestamp::now())
    .execute(&mut *conn)
    .await;
    match inserted {
        Err(err) if is_unique_violation(&err) => {
            return Err(AppError::conflict(
                "email",
                "An account with this email already exists. Log in instead.",
            ))
        }
        other => other?,
    };
    let person = authz::own_account(user.id, &user.email);
    let event =
        AuditEvent::new("user.create", "user", user.id).with_details(serde_json::json!({ "via": via }));
    audit::record(&mut *conn, &person, client, event).await?;
    tracing::info!(user_id = %user.id, via, "account created");
    Ok(user)
}

#[tracing::instrument(name = "accounts::find_user", skip_all, fields(id = %id), err(level = "debug"))]
pub async fn find_user(db: &Db, id: UserId) -> AppResult<Option<CurrentUser>> {
    let row: Option<UserRow> = sqlx::query_as("SELECT id, name, email FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(Into::into))
}
