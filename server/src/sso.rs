//! Single sign-on's HTTP endpoints: where identity providers send people
//! back, and the SAML metadata they import.

use std::{future::Future, time::Instant};

use app::{
    ids::OrgId,
    server::{
        actor::Client,
        oidc::{self, Callback},
        saml, session,
        sso::{Pending, SignedIn},
        state::AppState,
    },
    AppError,
};
use axum::{
    extract::{Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use http::{header, request::Parts, HeaderValue};
use tower_sessions::Session;

use crate::html::escape;

/// What is said when a provider's answer finds no log-in started in this browser.
const NOT_STARTED: &str =
    "Single sign-on was not started in this browser, or it was already used. Start again.";

/// Sent here with a code (or a refusal): signs the person in and opens the
/// Admin Panel, or goes back to the log-in page, which says why not.
pub async fn oidc_callback(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Query(callback): Query<Callback>,
) -> Response {
    let client = Client::of_request(&parts, state.trusted_proxies);
    let outcome = match session::take_sso(&session).await {
        Ok(Some(Pending::Oidc(pending))) => {
            let finish =
                oidc::finish(&state.db, &state.sealing, &state.public_url, &client, pending, &callback);
            throttled(&state, &client, finish).await
        }
        Ok(_) => Err(AppError::Unauthenticated(NOT_STARTED.into())),
        Err(err) => Err(err),
    };
    open_admin_panel(&session, outcome).await
}

/// Checks a provider's answer under the client address's allowance of
/// refusals (`Throttle::begin_single_sign_on`): past it, answers are not read.
async fn throttled(
    state: &AppState,
    client: &Client,
    finish: impl Future<Output = Result<SignedIn, AppError>>,
) -> Result<SignedIn, AppError> {
    let attempt =
        state.throttle.begin_single_sign_on(client.ip.as_deref(), Instant::now()).map_err(|wait| {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            AppError::TooManyRequests {
                message: format!(
                    "Too many failed single sign-ons from your address. Try again in {minutes} minute(s)."
                ),
                retry_after_secs: wait.as_secs().max(1),
            }
        })?;
    let outcome = finish.await;
    match &outcome {
        Ok(_) => attempt.succeeded(),
        Err(_) => attempt.failed(Instant::now()),
    }
    outcome
}

/// Signs the browser in as whom the provider vouched for and opens the page
/// they were going to (the Admin Panel by default); or goes back to the log-in
/// page, which says why not.
async fn open_admin_panel(session: &Session, outcome: Result<SignedIn, AppError>) -> Response {
    let signed_in = async {
        let signed_in = outcome?;
        let return_to = session::take_return_to(session).await?;
        session::log_in(session, signed_in.user.id, signed_in.via).await?;
        session::set_current_org(session, signed_in.org_id).await?;
        Ok::<_, AppError>(return_to.unwrap_or_else(|| "/admin".to_string()))
    };
    match signed_in.await {
        Ok(return_to) => Redirect::to(&return_to).into_response(),
        Err(err) => {
            let _ = session::set_log_in_notice(session, &err.to_string()).await;
            Redirect::to("/login").into_response()
        }
    }
}

/// What an IdP posts (HTTP-POST binding).
#[derive(serde::Deserialize)]
pub struct SamlPost {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState", default)]
    relay_state: String,
}

/// The Assertion Consumer Service. The IdP's page posts here from its own
/// site, so the browser leaves the session cookie out (it is SameSite=Lax):
/// this page posts the response on from Chancery's own origin to
/// `/sso/saml/{org}/continue`, where the session tells which log-in it
/// answers. Nothing is read or kept here.
pub async fn saml_acs(Path(org_id): Path<OrgId>, Form(post): Form<SamlPost>) -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let page = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in · Chancery</title></head>
<body><form method="post" action="/sso/saml/{org_id}/continue">
<input type="hidden" name="SAMLResponse" value="{response}">
<input type="hidden" name="RelayState" value="{relay_state}">
<p>Signing you in…</p><button type="submit">Continue</button></form>
<script nonce="{nonce}">document.forms[0].submit();</script></body></html>"#,
        response = escape(&post.saml_response),
        relay_state = escape(&post.relay_state),
    );
    let policy = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    let mut response = Html(page).into_response();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// The IdP's response, posted on by `saml_acs` with the session: signs the
/// person in or says why not.
pub async fn saml_continue(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Path(org_id): Path<OrgId>,
    Form(post): Form<SamlPost>,
) -> Response {
    let client = Client::of_request(&parts, state.trusted_proxies);
    let outcome = match session::take_sso(&session).await {
        Ok(pending) => {
            let pending = match pending {
                Some(Pending::Saml(pending)) => Some(pending),
                _ => None,
            };
            let finish =
                saml::finish(&state.db, &state.public_url, &client, org_id, pending, &post.saml_response);
            throttled(&state, &client, finish).await
        }
        Err(err) => Err(err),
    };
    open_admin_panel(&session, outcome).await
}

/// Chancery's SAML SP metadata for one Organization, for its IdP to import.
pub async fn saml_metadata(State(state): State<AppState>, Path(org_id): Path<OrgId>) -> Response {
    match saml::sp_metadata(&state.db, &state.public_url, org_id).await {
        Ok(xml) => (
            [
                (http::header::CONTENT_TYPE, "application/samlmetadata+xml"),
                (http::header::CONTENT_DISPOSITION, "attachment; filename=\"chancery-sp-metadata.xml\""),
            ],
            xml,
        )
            .into_response(),
        Err(err) => {
            (http::StatusCode::from_u16(err.status()).unwrap_or_default(), err.to_string()).into_response()
        }
    }
}
