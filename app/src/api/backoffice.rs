//! Server functions of the Backoffice. The Enterprise Account is always the
//! signed-in person's own, never one named by the browser.

use leptos::prelude::*;

use crate::{
    error::AppError,
    ids::{AdminKeyId, EnterpriseId, OrgId, UserId},
    model::{AdminKeyView, BackofficeHome, CreatedAdminKey, EnterpriseMember, EnterpriseOrg},
};

#[server(prefix = "/_fn", endpoint = "backoffice/home")]
pub async fn get_backoffice() -> Result<BackofficeHome, AppError> {
    use crate::server::{enterprise, request};
    let state = request::state()?;
    let user = request::signed_in_user(&state, &request::session().await?).await?;
    Ok(BackofficeHome {
        enterprise: enterprise::of_user(&state.db, user.id).await?,
        invitations: enterprise::invitations_of(&state.db, user.id).await?,
        user,
    })
}

#[server(prefix = "/_fn", endpoint = "backoffice/accept_invitation")]
pub async fn accept_enterprise_invitation(enterprise_id: EnterpriseId) -> Result<(), AppError> {
    use crate::server::{actor::Actor, enterprise, request};
    let state = request::state()?;
    let user = request::signed_in_user(&state, &request::session().await?).await?;
    let actor = Actor::User { id: user.id, email: user.email };
    enterprise::accept_invitation(&state.db, &actor, &request::client(&state), enterprise_id).await
}

#[server(prefix = "/_fn", endpoint = "backoffice/members")]
pub async fn list_enterprise_members() -> Result<Vec<EnterpriseMember>, AppError> {
    use crate::server::{enterprise, request};
    let (state, actor, enterprise) = request::enterprise_admin().await?;
    enterprise::list_members(&state.db, &actor, enterprise).await
}

#[server(prefix = "/_fn", endpoint = "backoffice/add_member")]
pub async fn add_enterprise_member(email: String) -> Result<(), AppError> {
    use crate::server::{enterprise, request};
    let (state, actor, enterprise) = request::enterprise_admin().await?;
    enterprise::add_member(&state.db, &actor, &request::client(&state), enterprise, &state.public_url, &email)
        .await
}

#[server(prefix = "/_fn", endpoint = "backoffice/remove_member")]
pub async fn remove_enterprise_member(user_id: UserId) -> Result<(), AppError> {
    use crate::server::{enterprise, request};
    let (state, actor, enterprise) = request::enterprise_admin().await?;
    enterprise::remove_member(&state.db, &actor, &request::client(&state), enterprise, user_id).await
}

#[server(prefix = "/_fn", endpoint = "backoffice/organizations")]
pub async fn list_enterprise_orgs() -> Result<Vec<EnterpriseOrg>, AppError> {
    use crate::server::{enterprise, request};
    let (state, actor, enterprise) = request::enterprise_admin().await?;
    enterprise::list_orgs(&state.db, &actor, enterprise).await
}

#[server(prefix = "/_fn", endpoint = "backoffice/create_organization")]
pub async fn create_enterprise_org(name: String) -> Result<(), AppError> {
    use crate::server::{enterprise, request};
    let (state, actor, enterprise) = request::enterprise_admin().await?;
    enterprise::create_org(&state.db, &actor, &request::client(&state), enterprise, &name).await.map(|_| ())
}

#[server(prefix = "/_fn", endpoint = "backoffice/promote_to_admin")]
pub async fn promote_to_admin(org_id: OrgId) -> Result<(), AppError> {
    use crate::server::{enterprise, request};
    let (state, actor, enterprise) = request::enterprise_admin().await?;
    enterprise::promote_to_admin(&state.db, &actor, &request::client(&state), enterprise, org_id)
        .await
        .map(|_| ())
}

#[server(prefix = "/_fn", endpoint = "backoffice/api_keys")]
pub async fn list_admin_keys() -> Result<Vec<AdminKeyView>, AppError> {
    use crate::server::{admin_keys, request};
    let (state, actor, enterprise) = request::enterprise_admin().await?;
    admin_keys::list(&state.db, &actor, enterprise).await
}

/// Creates an Admin API key; the response is the only place its secret ever appears.
#[server(prefix = "/_fn", endpoint = "backoffice/create_api_key")]
pub async fn create_admin_key(
    name: String,
    org_id: String,
    expires_on: String,
) -> Result<CreatedAdminKey, AppError> {
    use crate::server::{admin_keys, request};
    let (state, actor, enterprise) = request::enterprise_admin().await?;
    let org_id = org_id.parse().map_err(|_| AppError::invalid("org_id", "Choose an Organization."))?;
    let input = admin_keys::NewAdminKey { name, org_id, expires_on };
    let created = admin_keys::create(&state.db, &actor, &request::client(&state), enterprise, input).await?;
    request::show_once(&state, &created.view.name, &created.key).await?;
    Ok(created)
}

#[server(prefix = "/_fn", endpoint = "backoffice/revoke_api_key")]
pub async fn revoke_admin_key(key_id: AdminKeyId) -> Result<(), AppError> {
    use crate::server::{admin_keys, request};
    let (state, actor, enterprise) = request::enterprise_admin().await?;
    admin_keys::revoke(&state.db, &actor, &request::client(&state), enterprise, key_id).await
}
