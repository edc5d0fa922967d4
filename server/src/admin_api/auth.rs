//! Admin API key authentication: in `x-api-key`, or as the `Authorization:
//! Bearer` token Mistral's SDK sends.

use app::{
    ids::OrgId,
    server::{actor::Actor, actor::Client, admin_keys, state::AppState},
    AppError,
};
use axum::extract::FromRequestParts;
use http::request::Parts;

use super::ApiError;

/// The authenticated Admin API key: who acts, for which Organization, from where.
pub struct AdminKey {
    pub actor: Actor,
    pub org_id: OrgId,
    pub client: Client,
}

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let bearer = || {
            let value = parts.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
            value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))
        };
        let presented = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()).or_else(bearer);
        let actor = admin_keys::authenticate(&state.db, presented).await?;
        let org_id = actor.key_org().ok_or(AppError::Internal)?;
        Ok(Self { actor, org_id, client: Client::of_request(parts, state.trusted_proxies) })
    }
}
