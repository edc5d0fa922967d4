//! What the session cookie carries: the signed-in user and the organization
//! they are looking at. Only ids; everything else is read fresh per request.

use tower_sessions::Session;

use super::{
    sealed::SealingKey,
    sso::{Pending, SignInMethod},
};
use crate::{
    error::AppResult,
    ids::{OrgId, UserId},
    model::NewSecret,
};

pub const USER_KEY: &str = "user_id";
/// How the session was signed in (a `SignInMethod`).
pub const VIA_KEY: &str = "via";
const ORG_KEY: &str = "org_id";
/// A single sign-on under way: the person is at their identity provider.
const SSO_KEY: &str = "sso_pending";
/// Why the last single sign-on failed, for the log-in page to say once.
const NOTICE_KEY: &str = "log_in_notice";
/// Where a single sign-on under way goes back to once signed in.
const RETURN_TO_KEY: &str = "return_to";
/// A secret just made by a form posted without JavaScript, sealed, for the page it returns to.
const SHOWN_ONCE_KEY: &str = "shown_once";

/// Starts a signed-in session under a new id, so an id planted before log-in is worthless.
pub async fn log_in(session: &Session, user_id: UserId, via: SignInMethod) -> AppResult<()> {
    session.cycle_id().await?;
    session.clear().await;
    session.insert(USER_KEY, user_id).await?;
    session.insert(VIA_KEY, via).await?;
    Ok(())
}

/// Ends the session: the record is deleted and the cookie cleared.
pub async fn log_out(session: &Session) -> AppResult<()> {
    session.flush().await?;
    Ok(())
}

pub async fn user_id(session: &Session) -> AppResult<Option<UserId>> {
    Ok(session.get(USER_KEY).await?)
}

/// How the session was signed in; sessions from before this was kept count as password ones.
pub async fn signed_in_via(session: &Session) -> AppResult<SignInMethod> {
    Ok(session.get(VIA_KEY).await?.unwrap_or(SignInMethod::Password))
}

pub async fn current_org(session: &Session) -> AppResult<Option<OrgId>> {
    Ok(session.get(ORG_KEY).await?)
}

pub async fn set_current_org(session: &Session, org_id: OrgId) -> AppResult<()> {
    session.insert(ORG_KEY, org_id).await?;
    Ok(())
}

/// Remembers the single sign-on this browser leaves for (one at a time), and
/// the page of this site to go back to after it (a checked local path).
pub async fn begin_sso(session: &Session, pending: Pending, return_to: Option<String>) -> AppResult<()> {
    session.insert(SSO_KEY, pending).await?;
    match return_to {
        Some(path) => session.insert(RETURN_TO_KEY, path).await?,
        None => {
            session.remove::<String>(RETURN_TO_KEY).await?;
        }
    }
    Ok(())
}

/// Where the single sign-on that ends now goes back to, once.
pub async fn take_return_to(session: &Session) -> AppResult<Option<String>> {
    Ok(session.remove(RETURN_TO_KEY).await?)
}

/// The single sign-on this browser left for, once: a second callback finds none.
pub async fn take_sso(session: &Session) -> AppResult<Option<Pending>> {
    Ok(session.remove(SSO_KEY).await?)
}

pub async fn set_log_in_notice(session: &Session, notice: &str) -> AppResult<()> {
    session.insert(NOTICE_KEY, notice).await?;
    Ok(())
}

pub async fn take_log_in_notice(session: &Session) -> AppResult<Option<String>> {
    Ok(session.remove(NOTICE_KEY).await?)
}

/// Keeps a secret just made for the next page of this session to show, once.
/// Sessions are stored in the database: the secret is kept sealed there.
pub async fn hold_shown_once(session: &Session, sealing: &SealingKey, new: &NewSecret) -> AppResult<()> {
    let sealed = sealing.seal(&new.secret, &new.name);
    session.insert(SHOWN_ONCE_KEY, (&new.name, sealed)).await?;
    Ok(())
}

/// The secret held by [`hold_shown_once`], once.
pub async fn take_shown_once(session: &Session, sealing: &SealingKey) -> AppResult<Option<NewSecret>> {
    let held: Option<(String, String)> = session.remove(SHOWN_ONCE_KEY).await?;
    Ok(held.and_then(|(name, sealed)| Some(NewSecret { secret: sealing.open(&sealed, &name)?, name })))
}
