//! Single sign-on's HTTP endpoints: where identity providers send people
//! back, and the SAML metadata they import.

use app::{
    ids::OrgId,
    server::{
        actor::Client,
        oidc::{self, Callback},
        saml, session,
        sso::SignInMethod,
        state::AppState,
    },
};
use axum::{
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use http::request::Parts;
use tower_sessions::Session;

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
        Ok(Some(pending)) => {
            oidc::finish(&state.db, &state.sealing, &state.public_url, &client, pending, &callback).await
        }
        Ok(None) => Err(app::AppError::Unauthenticated(
            "Single sign-on was not started in this browser, or it was already used. Start again.".into(),
        )),
        Err(err) => Err(err),
    };
    let signed_in = async {
        let signed_in = outcome?;
        session::log_in(&session, signed_in.user.id, SignInMethod::Oidc).await?;
        session::set_current_org(&session, signed_in.org_id).await?;
        Ok::<_, app::AppError>(())
    };
    match signed_in.await {
        Ok(()) => Redirect::to("/admin").into_response(),
        Err(err) => {
            let _ = session::set_log_in_notice(&session, &err.to_string()).await;
            Redirect::to("/login").into_response()
        }
    }
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
