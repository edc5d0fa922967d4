//! Server functions of single sign-on: leaving the log-in page for one's
//! identity provider, and the Settings page's OpenID Connect provider and
//! requirement (Admins only, in the session's current Organization).

use leptos::prelude::*;

use crate::{
    error::AppError,
    model::{OidcPanel, OidcSettings, SamlPanel, SamlSettings, SsoEnforcement},
};

/// Sends the person to the identity provider of the Organization that verified
/// their email's domain; they come back to `/sso/oidc/callback` or the
/// Organization's SAML Assertion Consumer Service.
/// `next` is the page of this site to land on once signed in.
#[server(prefix = "/_fn", endpoint = "sso/start")]
pub async fn start_sso(email: String, next: Option<String>) -> Result<(), AppError> {
    use crate::{
        server::{request, session, sso},
        validate,
    };
    let state = request::state()?;
    let session = request::session().await?;
    let (url, pending) = sso::start(&state.db, &state.public_url, &email).await?;
    let return_to = next.as_deref().and_then(validate::local_path);
    session::begin_sso(&session, pending, return_to).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

/// Why the last single sign-on of this browser failed, said once.
#[server(prefix = "/_fn", endpoint = "sso/notice")]
pub async fn take_log_in_notice() -> Result<Option<String>, AppError> {
    use crate::server::{request, session};
    session::take_log_in_notice(&request::session().await?).await
}

#[server(prefix = "/_fn", endpoint = "settings/oidc")]
pub async fn get_oidc() -> Result<OidcPanel, AppError> {
    use crate::server::{oidc, request};
    let (state, me, org) = request::org_member().await?;
    let settings = oidc::settings(&state.db, &me, org.id).await?;
    Ok(OidcPanel { settings, redirect_uri: oidc::redirect_uri(&state.public_url) })
}

#[server(prefix = "/_fn", endpoint = "settings/save_oidc")]
pub async fn save_oidc(
    issuer: String,
    client_id: String,
    client_secret: String,
    default_role: String,
    groups_claim: String,
    // A checkbox: sent ("on") only when ticked.
    enabled: Option<String>,
) -> Result<OidcSettings, AppError> {
    use crate::{
        model::OidcInput,
        server::{oidc, request},
    };
    let (state, me, org) = request::org_member().await?;
    let input = OidcInput {
        issuer,
        client_id,
        client_secret,
        default_role,
        groups_claim,
        enabled: enabled.is_some(),
    };
    oidc::save(&state.db, &state.sealing, &me, &request::client(&state), org.id, input).await
}

#[server(prefix = "/_fn", endpoint = "settings/remove_oidc")]
pub async fn remove_oidc() -> Result<(), AppError> {
    use crate::server::{oidc, request};
    let (state, me, org) = request::org_member().await?;
    oidc::remove(&state.db, &me, &request::client(&state), org.id).await
}

#[server(prefix = "/_fn", endpoint = "settings/sso_enforcement")]
pub async fn get_sso_enforcement() -> Result<SsoEnforcement, AppError> {
    use crate::server::{request, sso};
    let (state, me, org) = request::org_member().await?;
    sso::enforcement(&state.db, &me, org.id).await
}

/// Requires single sign-on of the members in verified domains; their password sessions end.
#[server(prefix = "/_fn", endpoint = "settings/require_sso")]
pub async fn require_sso() -> Result<SsoEnforcement, AppError> {
    use crate::server::{request, session, sso};
    let (state, me, org) = request::org_member().await?;
    let via = session::signed_in_via(&request::session().await?).await?;
    sso::require(&state.db, &me, &request::client(&state), org.id, via).await
}

#[server(prefix = "/_fn", endpoint = "settings/allow_passwords")]
pub async fn allow_passwords() -> Result<SsoEnforcement, AppError> {
    use crate::server::{request, sso};
    let (state, me, org) = request::org_member().await?;
    sso::allow_passwords(&state.db, &me, &request::client(&state), org.id).await
}

#[server(prefix = "/_fn", endpoint = "settings/saml")]
pub async fn get_saml() -> Result<SamlPanel, AppError> {
    use crate::server::{request, saml};
    let (state, me, org) = request::org_member().await?;
    saml::panel(&state.db, &me, &state.public_url, org.id).await
}

#[server(prefix = "/_fn", endpoint = "settings/save_saml")]
#[allow(clippy::too_many_arguments)] // one per form field
pub async fn save_saml(
    metadata_xml: String,
    idp_entity_id: String,
    sso_url: String,
    certificate: String,
    default_role: String,
    email_attribute: String,
    groups_attribute: String,
    // Checkboxes: sent ("on") only when ticked.
    idp_initiated: Option<String>,
    enabled: Option<String>,
) -> Result<SamlSettings, AppError> {
    use crate::{
        model::SamlInput,
        server::{request, saml},
    };
    let (state, me, org) = request::org_member().await?;
    let input = SamlInput {
        metadata_xml,
        idp_entity_id,
        sso_url,
        certificate,
        default_role,
        email_attribute,
        groups_attribute,
        idp_initiated: idp_initiated.is_some(),
        enabled: enabled.is_some(),
    };
    saml::save(&state.db, &me, &request::client(&state), org.id, input).await
}

#[server(prefix = "/_fn", endpoint = "settings/remove_saml")]
pub async fn remove_saml() -> Result<(), AppError> {
    use crate::server::{request, saml};
    let (state, me, org) = request::org_member().await?;
    saml::remove(&state.db, &me, &request::client(&state), org.id).await
}
