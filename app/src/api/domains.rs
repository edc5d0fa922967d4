//! Server functions of the Settings page's verified domains (Admins only). The
//! organization is always the session's current one.

use leptos::prelude::*;

use crate::{error::AppError, model::DomainView};

#[server(prefix = "/_fn", endpoint = "settings/domains")]
pub async fn list_domains() -> Result<Vec<DomainView>, AppError> {
    use crate::server::{domains, request};
    let (state, me, org) = request::org_member().await?;
    domains::list(&state.db, &me, org.id).await
}

#[server(prefix = "/_fn", endpoint = "settings/claim_domain")]
pub async fn claim_domain(domain: String) -> Result<DomainView, AppError> {
    use crate::server::{domains, request};
    let (state, me, org) = request::org_member().await?;
    domains::claim(&state.db, &me, &request::client(&state), org.id, &domain).await
}

#[server(prefix = "/_fn", endpoint = "settings/verify_domain")]
pub async fn verify_domain(domain: String) -> Result<DomainView, AppError> {
    use crate::server::{domains, request};
    let (state, me, org) = request::org_member().await?;
    domains::verify(&state.db, state.dns.as_ref(), &me, &request::client(&state), org.id, &domain).await
}

#[server(prefix = "/_fn", endpoint = "settings/remove_domain")]
pub async fn remove_domain(domain: String) -> Result<(), AppError> {
    use crate::server::{domains, request};
    let (state, me, org) = request::org_member().await?;
    domains::remove(&state.db, &me, &request::client(&state), org.id, &domain).await
}
