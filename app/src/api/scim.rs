//! Server functions of the Settings page's SCIM provisioning: the tokens an
//! Organization's identity provider provisions people with (Admins only, in
//! the session's current Organization).

use leptos::prelude::*;

use crate::{
    error::AppError,
    ids::ScimTokenId,
    model::{CreatedScimToken, ScimPanel},
};

#[server(prefix = "/_fn", endpoint = "settings/scim")]
pub async fn get_scim_panel() -> Result<ScimPanel, AppError> {
    use crate::server::{request, scim::tokens};
    let (state, me, org) = request::org_member().await?;
    let tokens = tokens::list(&state.db, &me, org.id).await?;
    Ok(ScimPanel { base_url: format!("{}/scim/v2", state.public_url.trim_end_matches('/')), tokens })
}

/// The token is in the answer this once, never again.
#[server(prefix = "/_fn", endpoint = "settings/create_scim_token")]
pub async fn create_scim_token(name: String) -> Result<CreatedScimToken, AppError> {
    use crate::server::{request, scim::tokens};
    let (state, me, org) = request::org_member().await?;
    let created = tokens::create(&state.db, &me, &request::client(&state), org.id, &name).await?;
    request::show_once(&state, &created.view.name, &created.token).await?;
    Ok(created)
}

#[server(prefix = "/_fn", endpoint = "settings/revoke_scim_token")]
pub async fn revoke_scim_token(id: ScimTokenId) -> Result<(), AppError> {
    use crate::server::{request, scim::tokens};
    let (state, me, org) = request::org_member().await?;
    tokens::revoke(&state.db, &me, &request::client(&state), org.id, id).await
}
