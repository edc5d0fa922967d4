//! Server functions of one's own account: asking for a password reset link,
//! setting a new password with one, changing one's password when signed in,
//! and proving one's email address.

use leptos::prelude::*;

use crate::error::AppError;

/// Emails a reset link if an account uses `email`; answers the same either way.
#[server(prefix = "/_fn", endpoint = "password/forgot")]
pub async fn request_password_reset(email: String) -> Result<String, AppError> {
    use crate::server::{recovery, request};
    let state = request::state()?;
    let client = request::client(&state);
    recovery::request_reset(&state.db, &state.throttle, &client, &state.public_url, &email).await?;
    Ok(recovery::RESET_REQUESTED.to_string())
}

/// Sets a new password with a reset link's token and signs this browser in.
#[server(prefix = "/_fn", endpoint = "password/reset")]
pub async fn reset_password(token: String, password: String) -> Result<(), AppError> {
    use crate::server::{recovery, request, session, sso};
    let state = request::state()?;
    let session = request::session().await?;
    let user = recovery::reset(&state.db, &request::client(&state), &token, password).await?;
    session::log_in(&session, user.id, sso::SignInMethod::Password).await?;
    leptos_axum::redirect(super::landing_of(&state, user).await?.path());
    Ok(())
}

/// Changes the signed-in person's password; their other sessions end.
#[server(prefix = "/_fn", endpoint = "password/change")]
pub async fn change_password(current_password: String, new_password: String) -> Result<(), AppError> {
    use crate::server::{recovery, request, session};
    let state = request::state()?;
    let session = request::session().await?;
    let user = request::signed_in_user(&state, &session).await?;
    let via = session::signed_in_via(&session).await?;
    let org = session::current_org(&session).await?;
    recovery::change(
        &state.db,
        &state.throttle,
        &request::client(&state),
        &user,
        current_password,
        new_password,
    )
    .await?;
    // Every session ended: this one begins again, where it was.
    session::log_in(&session, user.id, via).await?;
    if let Some(org) = org {
        session::set_current_org(&session, org).await?;
    }
    Ok(())
}

/// Proves the address behind an emailed link; signed-in browsers go on to where they belong.
#[server(prefix = "/_fn", endpoint = "email/verify")]
pub async fn verify_email(token: String) -> Result<(), AppError> {
    use crate::server::{recovery, request};
    let state = request::state()?;
    recovery::verify_email(&state.db, &request::client(&state), &token).await?;
    Ok(())
}

/// Emails the signed-in person a new link to prove their address.
#[server(prefix = "/_fn", endpoint = "email/resend")]
pub async fn resend_verification() -> Result<(), AppError> {
    use crate::server::{recovery, request};
    let state = request::state()?;
    let session = request::session().await?;
    let user = request::signed_in_user(&state, &session).await?;
    recovery::resend_verification(
        &state.db,
        &state.throttle,
        &request::client(&state),
        &state.public_url,
        &user,
    )
    .await
}
