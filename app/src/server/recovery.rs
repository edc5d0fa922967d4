//! Getting back in, changing one's password, and proving one's address.
//!
//! A forgotten password is reset through a link emailed to the account's
//! address: it works once, for an hour, and only its SHA-256 is kept; asking
//! for one answers the same whether or not the address has an account, and is
//! throttled per address asked for and per client. Setting the new password
//! ends every session of the account (a squatter's too: the owner of an
//! address can always reclaim it). Changing one's password needs the current
//! one and ends one's other sessions. People who must log in through single
//! sign-on have no password to reset or change: they are told so.
//!
//! An address is proven by the link emailed at sign-up, by an invitation
//! accepted through its emailed link, by a password reset, or by an identity
//! provider. An identity provider vouching for an address whose account was
//! not proven takes the account back from whoever made it: its password is
//! cleared and its sessions end (someone who signed up with another's address
//! keeps nothing once its owner arrives).

use std::time::Instant;

use super::{
    accounts::{self, NO_PASSWORD},
    actor::Client,
    authz,
    db::Db,
    mail, password,
    secret_key::{self, sha256_hex},
    sso,
    throttle::Throttle,
};
use crate::{
    error::{AppError, AppResult},
    ids::UserId,
    model::CurrentUser,
    time::Timestamp,
    validate,
};

/// Where reset links point, under the public URL; the token follows.
pub const RESET_LINK_PATH: &str = "/reset-password/";
/// Where address-proving links point, under the public URL; the token follows.
pub const VERIFY_LINK_PATH: &str = "/verify-email/";
/// How long an address-proving link works.
const VERIFY_FOR_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// How long a reset link works.
const RESET_FOR_MS: i64 = 60 * 60 * 1000;

/// What anyone who asks is told, whether or not the address has an account.
pub const RESET_REQUESTED: &str = "If an account uses that address, we have emailed it a link to choose a new password. The link works once, for one hour.";

const INVALID_LINK: &str = "This link is not valid, or was already used: ask for a new one.";

/// Emails a reset link to the account using `email`, if there is one (see the
/// module's documentation). `Ok` tells the asker nothing more than `RESET_REQUESTED`.
#[tracing::instrument(name = "recovery::request_reset", skip_all, err(level = "debug"))]
pub async fn request_reset(
    db: &Db,
    throttle: &Throttle,
    client: &Client,
    public_url: &str,
    email: &str,
) -> AppResult<()> {
    let email = validate::email(email)?;
    if let Err(wait) = throttle.password_reset(&email.normalized, client.ip.as_deref(), Instant::now()) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return Err(AppError::TooManyRequests {
            message: format!("Too many reset emails were asked for. Try again in {minutes} minute(s)."),
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let mut tx = db.begin().await?;
    let account: Option<(UserId, String)> =
        sqlx::query_as("SELECT id, email FROM users WHERE email_normalized = $1")
            .bind(&email.normalized)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((user_id, address)) = account else {
        return Ok(());
    };
    let person = authz::own_account(user_id, &address);
    if sso::required_of(&mut tx, user_id).await?.is_some() {
        let body = format!(
            "Someone asked to reset the password of your Chancery account.\n\n\
             Your organization requires single sign-on: log in with \u{201c}Continue with SSO\u{201d} at\n\
             {public_url}/login/sso\n\nNothing was changed."
        );
        mail::queue(&mut tx, &address, "Log in to Chancery with single sign-on", &body).await?;
        let details = serde_json::json!({ "refused": "single sign-on required" });
        accounts::record_in_each_org(
            &mut tx,
            &person,
            client,
            user_id,
            "user.password_reset_request",
            Some(details),
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    let token = issue_link(&mut tx, Link::Reset, user_id).await?;
    let body = format!(
        "Someone asked to reset the password of your Chancery account. To choose a new one, open\n\
         {public_url}{RESET_LINK_PATH}{token}\n\n\
         The link works once, for one hour. If you did not ask, ignore this email: your password is unchanged."
    );
    mail::queue(&mut tx, &address, "Reset your Chancery password", &body).await?;
    accounts::record_in_each_org(&mut tx, &person, client, user_id, "user.password_reset_request", None)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a new password with a reset link's token: the link is spent, and every
/// session of the account ends. The person is to be signed in afresh.
#[tracing::instrument(name = "recovery::reset", skip_all, err(level = "debug"))]
pub async fn reset(db: &Db, client: &Client, token: &str, new_password: String) -> AppResult<CurrentUser> {
    validate::new_password("password", &new_password)?;
    let hash = password::hash(new_password).await?;
    let mut tx = db.begin().await?;
    let link: Option<(UserId, String, String, Timestamp)> = sqlx::query_as(
        "SELECT u.id, u.name, u.email, r.expires_at FROM password_resets r JOIN users u ON u.id = r.user_id
         WHERE r.token_sha256 = $1 AND r.used_at IS NULL",
    )
    .bind(sha256_hex(token.trim()))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user_id, name, email, expires_at)) = link else {
        return Err(AppError::invalid("token", INVALID_LINK));
    };
    let now = Timestamp::now();
    if expires_at.0 <= now.0 {
        return Err(AppError::invalid(
            "token",
            "This link has expired (links work for one hour): ask for a new one.",
        ));
    }
    if sso::required_of(&mut tx, user_id).await?.is_some() {
        return Err(AppError::invalid("token", sso::SSO_REQUIRED));
    }
    let spent =
        sqlx::query("UPDATE password_resets SET used_at = $1 WHERE token_sha256 = $2 AND used_at IS NULL")
            .bind(now)
            .bind(sha256_hex(token.trim()))
            .execute(&mut *tx)
            .await?;
    if spent.rows_affected() != 1 {
        return Err(AppError::invalid("token", INVALID_LINK));
    }
    let ended = replace_password(&mut tx, user_id, &hash).await?;
    let person = authz::own_account(user_id, &email);
    mark_verified(&mut tx, &person, client, user_id, "password reset").await?;
    let details = serde_json::json!({ "via": "reset", "sessions_ended": ended });
    accounts::record_in_each_org(&mut tx, &person, client, user_id, "user.password.update", Some(details))
        .await?;
    tx.commit().await?;
    Ok(CurrentUser { id: user_id, name, email })
}

/// Changes a signed-in person's password, given the current one (wrong ones
/// count against the log-in throttle); every session of theirs ends, and the
/// caller signs the present one in afresh.
#[tracing::instrument(name = "recovery::change", skip_all, err(level = "debug"))]
pub async fn change(
    db: &Db,
    throttle: &Throttle,
    client: &Client,
    user: &CurrentUser,
    current_password: String,
    new_password: String,
) -> AppResult<()> {
    validate::new_password("new_password", &new_password)?;
    let email = validate::email(&user.email)?;
    let now = Instant::now();
    let attempt = throttle.begin(&email.normalized, client.ip.as_deref(), now).map_err(|wait| {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        AppError::TooManyRequests {
            message: format!("Too many wrong passwords. Try again in {minutes} minute(s)."),
            retry_after_secs: wait.as_secs().max(1),
        }
    })?;
    let (stored,): (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
        .bind(user.id)
        .fetch_one(db.pool())
        .await?;
    if stored == NO_PASSWORD {
        return Err(AppError::invalid(
            "current_password",
            "Your account has no password yet (you log in with single sign-on): set one with \u{201c}Forgot your password?\u{201d} on the log-in page.",
        ));
    }
    if !password::verify(current_password, Some(stored)).await {
        attempt.failed(now);
        return Err(AppError::invalid("current_password", "This is not your current password."));
    }
    attempt.succeeded();
    let hash = password::hash(new_password).await?;
    let mut tx = db.begin().await?;
    let ended = replace_password(&mut tx, user.id, &hash).await?;
    let person = authz::own_account(user.id, &user.email);
    // The present session is among those ended, and begins again at once.
    let details = serde_json::json!({ "via": "change", "other_sessions_ended": ended.saturating_sub(1) });
    accounts::record_in_each_org(&mut tx, &person, client, user.id, "user.password.update", Some(details))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Emails `address` a link that proves it belongs to account `user_id` (one at a time).
pub(super) async fn send_verification(
    conn: &mut sqlx::AnyConnection,
    public_url: &str,
    user_id: UserId,
    address: &str,
) -> AppResult<()> {
    let token = issue_link(conn, Link::Verify, user_id).await?;
    let body = format!(
        "Welcome to Chancery. Confirm that this address is yours:\n{public_url}{VERIFY_LINK_PATH}{token}\n\n\
         The link works for 7 days. If you did not sign up, ignore this email."
    );
    mail::queue(conn, address, "Confirm your email address for Chancery", &body).await?;
    Ok(())
}

/// Emails the signed-in person a new link to prove their address, unless it is
/// proven (counted like reset emails).
#[tracing::instrument(name = "recovery::resend_verification", skip_all, err(level = "debug"))]
pub async fn resend_verification(
    db: &Db,
    throttle: &Throttle,
    client: &Client,
    public_url: &str,
    user: &CurrentUser,
) -> AppResult<()> {
    let email = validate::email(&user.email)?;
    if let Err(wait) = throttle.password_reset(&email.normalized, client.ip.as_deref(), Instant::now()) {
        return Err(AppError::TooManyRequests {
            message: "Too many emails were asked for. Try again later.".into(),
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let mut tx = db.begin().await?;
    if !is_verified(&mut tx, user.id).await? {
        send_verification(&mut tx, public_url, user.id, &user.email).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Proves an address with the link emailed at sign-up.
#[tracing::instrument(name = "recovery::verify_email", skip_all, err(level = "debug"))]
pub async fn verify_email(db: &Db, client: &Client, token: &str) -> AppResult<CurrentUser> {
    let mut tx = db.begin().await?;
    let link: Option<(UserId, String, String, Timestamp)> = sqlx::query_as(
        "SELECT u.id, u.name, u.email, v.expires_at FROM email_verifications v JOIN users u ON u.id = v.user_id
         WHERE v.token_sha256 = $1",
    )
    .bind(sha256_hex(token.trim()))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user_id, name, email, expires_at)) = link else {
        return Err(AppError::invalid("token", INVALID_LINK));
    };
    if expires_at.0 <= Timestamp::now().0 {
        return Err(AppError::invalid("token", "This link has expired: log in and ask for a new one."));
    }
    sqlx::query("DELETE FROM email_verifications WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    let person = authz::own_account(user_id, &email);
    mark_verified(&mut tx, &person, client, user_id, "link").await?;
    tx.commit().await?;
    Ok(CurrentUser { id: user_id, name, email })
}

pub(super) async fn is_verified(conn: &mut sqlx::AnyConnection, user_id: UserId) -> AppResult<bool> {
    let (verified_at,): (Option<Timestamp>,) =
        sqlx::query_as("SELECT email_verified_at FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(verified_at.is_some())
}

/// Records that the account's owner proved its address (`how`: link,
/// invitation, password reset, or a protocol), once.
pub(super) async fn mark_verified(
    conn: &mut sqlx::AnyConnection,
    person: &impl authz::Authority,
    client: &Client,
    user_id: UserId,
    how: &str,
) -> AppResult<()> {
    let marked =
        sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
            .bind(Timestamp::now())
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    if marked.rows_affected() == 1 {
        let details = serde_json::json!({ "by": how });
        accounts::record_in_each_org(conn, person, client, user_id, "user.email.verify", Some(details))
            .await?;
    }
    Ok(())
}

/// An identity provider vouched for the owner of account `user_id`'s address:
/// if it was never proven, whoever made the account loses it (password
/// cleared, sessions ended) before the owner is signed in.
pub(super) async fn reclaim_for_owner(
    conn: &mut sqlx::AnyConnection,
    person: &impl authz::Authority,
    client: &Client,
    user_id: UserId,
    how: &str,
) -> AppResult<()> {
    if is_verified(conn, user_id).await? {
        return Ok(());
    }
    let ended = replace_password(conn, user_id, NO_PASSWORD).await?;
    let details = serde_json::json!({ "sessions_ended": ended, "password_cleared": true });
    accounts::record_in_each_org(conn, person, client, user_id, "user.reclaim", Some(details)).await?;
    mark_verified(conn, person, client, user_id, how).await
}

/// The one-time links emailed to an account's address, each kind in its table.
#[derive(Clone, Copy)]
enum Link {
    Reset,
    Verify,
}

impl Link {
    fn table(self) -> &'static str {
        match self {
            Self::Reset => "password_resets",
            Self::Verify => "email_verifications",
        }
    }

    fn works_for_ms(self) -> i64 {
        match self {
            Self::Reset => RESET_FOR_MS,
            Self::Verify => VERIFY_FOR_MS,
        }
    }
}

/// A new link of `kind` for account `user_id`: the token, for the email only
/// (its SHA-256 is stored). One per account at a time: the older one stops working.
async fn issue_link(conn: &mut sqlx::AnyConnection, kind: Link, user_id: UserId) -> AppResult<String> {
    let token = secret_key::random_token();
    let now = Timestamp::now();
    let table = kind.table();
    sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1")).bind(user_id).execute(&mut *conn).await?;
    sqlx::query(&format!(
        "INSERT INTO {table} (token_sha256, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"
    ))
    .bind(sha256_hex(&token))
    .bind(user_id)
    .bind(now)
    .bind(Timestamp(now.0 + kind.works_for_ms()))
    .execute(&mut *conn)
    .await?;
    Ok(token)
}

/// Gives account `user_id` the password of `hash` (or none) and ends all its
/// sessions: whoever held the old one is out. How many sessions ended.
async fn replace_password(conn: &mut sqlx::AnyConnection, user_id: UserId, hash: &str) -> AppResult<u64> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    let ended =
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    Ok(ended.rows_affected())
}
