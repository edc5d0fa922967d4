//! Server functions of the Admin Panel's Members and Settings pages, and of
//! the invitation page. The organization is always the session's current one.

use leptos::prelude::*;

use crate::{
    error::AppError,
    ids::{AdminKeyId, UserId},
    model::{AccessEnded, AdminKeyView, Invitation, InvitationPreview, Member, Page, Slice},
};

/// Roles from the form's checkboxes (`role_admin=on`, ...).
#[cfg(feature = "ssr")]
fn checked_roles(
    admin: Option<String>,
    billing: Option<String>,
    member: Option<String>,
) -> Vec<crate::model::OrgRole> {
    use crate::model::OrgRole;
    [(admin, OrgRole::Admin), (billing, OrgRole::Billing), (member, OrgRole::Member)]
        .into_iter()
        .filter_map(|(checked, role)| checked.filter(|v| !v.is_empty()).map(|_| role))
        .collect()
}

/// Members shown on one page of the Members page, a workspace's or a group's.
pub const MEMBERS_PAGE_SIZE: i64 = 50;

/// One page of members by name: `search` in names and emails, `role`
/// (`admin`, `billing`, `member`) or empty for any.
#[server(prefix = "/_fn", endpoint = "members")]
pub async fn list_members(
    search: Option<String>,
    role: Option<String>,
    page: Option<i64>,
) -> Result<Page<Member>, AppError> {
    use crate::{
        model::OrgRole,
        server::{members, request},
    };
    let (state, me, org) = request::org_member().await?;
    let role = match role.as_deref().map(str::trim).unwrap_or_default() {
        "" => None,
        name => {
            Some(OrgRole::parse(name).ok_or_else(|| AppError::invalid("role", "Choose a role, or any."))?)
        }
    };
    let filter = members::MemberFilter { search, email: None, role };
    members::members_page(&state.db, &me, org.id, &filter, page, Some(MEMBERS_PAGE_SIZE)).await
}

/// A page of the invitations not yet accepted nor revoked, oldest first,
/// past the invitation `after`.
#[server(prefix = "/_fn", endpoint = "members/invitations")]
pub async fn list_invitations(after: Option<uuid::Uuid>) -> Result<Slice<Invitation>, AppError> {
    use crate::server::{members, request};
    let (state, me, org) = request::org_member().await?;
    members::invitations(&state.db, &me, org.id, None, after, members::INVITATIONS_PAGE_SIZE).await
}

#[server(prefix = "/_fn", endpoint = "members/invite")]
pub async fn invite_member(
    email: String,
    role_admin: Option<String>,
    role_billing: Option<String>,
    role_member: Option<String>,
) -> Result<(), AppError> {
    use crate::server::{members, request};
    let (state, me, org) = request::org_member().await?;
    let roles = checked_roles(role_admin, role_billing, role_member);
    let client = request::client(&state);
    members::invite(
        &state.db,
        &state.throttle,
        &me,
        &client,
        org.id,
        &state.public_url,
        members::Invitee { email: &email, roles: &roles, workspaces: &[] },
    )
    .await
    .map(|_| ())
}

#[server(prefix = "/_fn", endpoint = "members/resend_invitation")]
pub async fn resend_invitation(invitation_id: uuid::Uuid) -> Result<(), AppError> {
    use crate::server::{members, request};
    let (state, me, org) = request::org_member().await?;
    members::resend(&state.db, &me, &request::client(&state), org.id, &state.public_url, invitation_id).await
}

#[server(prefix = "/_fn", endpoint = "members/revoke_invitation")]
pub async fn revoke_invitation(invitation_id: uuid::Uuid) -> Result<(), AppError> {
    use crate::server::{members, request};
    let (state, me, org) = request::org_member().await?;
    members::revoke(&state.db, &me, &request::client(&state), org.id, invitation_id).await
}

#[server(prefix = "/_fn", endpoint = "members/set_roles")]
pub async fn set_member_roles(
    user_id: UserId,
    role_admin: Option<String>,
    role_billing: Option<String>,
    role_member: Option<String>,
) -> Result<AccessEnded, AppError> {
    use crate::server::{members, request};
    let (state, me, org) = request::org_member().await?;
    let roles = checked_roles(role_admin, role_billing, role_member);
    members::set_roles(&state.db, &me, &request::client(&state), org.id, user_id, &roles)
        .await
        .map(|(_, ended)| ended)
}

#[server(prefix = "/_fn", endpoint = "members/remove")]
pub async fn remove_member(user_id: UserId) -> Result<AccessEnded, AppError> {
    use crate::server::{members, request};
    let (state, me, org) = request::org_member().await?;
    members::remove(&state.db, &state.sessions, &me, &request::client(&state), org.id, user_id).await
}

#[server(prefix = "/_fn", endpoint = "settings/allowed_domains")]
pub async fn get_allowed_domains() -> Result<Vec<String>, AppError> {
    use crate::server::{members, request};
    let (state, me, org) = request::org_member().await?;
    members::allowed_domains(&state.db, &me, org.id).await
}

#[server(prefix = "/_fn", endpoint = "settings/rename_organization")]
pub async fn rename_organization(name: String) -> Result<(), AppError> {
    use crate::server::{orgs, request};
    let (state, me, org) = request::org_member().await?;
    orgs::rename(&state.db, &me, &request::client(&state), org.id, &name).await?;
    // The name is shown on every page of the panel: load it afresh.
    leptos_axum::redirect("/admin/settings");
    Ok(())
}

/// The current Organization's key lifetime policy.
#[server(prefix = "/_fn", endpoint = "settings/key_policy")]
pub async fn get_key_policy() -> Result<crate::model::KeyPolicy, AppError> {
    use crate::server::{key_policy, request};
    let (state, me, org) = request::org_member().await?;
    key_policy::get(&state.db, &me, org.id, None).await
}

/// `max_days`: whole days, or empty for no maximum.
#[server(prefix = "/_fn", endpoint = "settings/set_key_policy")]
pub async fn set_key_policy(max_days: String) -> Result<(), AppError> {
    use crate::server::{key_policy, request};
    let (state, me, org) = request::org_member().await?;
    let days = match max_days.trim() {
        "" => None,
        text => Some(
            text.parse::<i64>()
                .map_err(|_| AppError::invalid("max_days", "Enter a number of days, or nothing."))?,
        ),
    };
    key_policy::set_for_org(&state.db, &me, &request::client(&state), org.id, days).await
}

/// `domains`: separated by commas, spaces or new lines; empty allows any domain.
#[server(prefix = "/_fn", endpoint = "settings/set_allowed_domains")]
pub async fn set_allowed_domains(domains: String) -> Result<(), AppError> {
    use crate::server::{members, request};
    let (state, me, org) = request::org_member().await?;
    let list: Vec<String> = domains.split([',', ' ', '\n', '\r']).map(str::to_string).collect();
    members::set_allowed_domains(&state.db, &me, &request::client(&state), org.id, &list).await.map(|_| ())
}

/// The Admin API keys that administer the current Organization (Admins only).
#[server(prefix = "/_fn", endpoint = "settings/admin_keys")]
pub async fn list_org_admin_keys() -> Result<Vec<AdminKeyView>, AppError> {
    use crate::server::{admin_keys, request};
    let (state, me, org) = request::org_member().await?;
    admin_keys::list_for_org(&state.db, &me, org.id).await
}

#[server(prefix = "/_fn", endpoint = "settings/revoke_admin_key")]
pub async fn revoke_org_admin_key(key_id: AdminKeyId) -> Result<(), AppError> {
    use crate::server::{admin_keys, request};
    let (state, me, org) = request::org_member().await?;
    admin_keys::revoke_for_org(&state.db, &me, &request::client(&state), org.id, key_id).await
}

/// What `/invite/{token}` shows. Works signed in or not.
#[server(prefix = "/_fn", endpoint = "invitation")]
pub async fn get_invitation(token: String) -> Result<InvitationPreview, AppError> {
    use crate::server::{members, request};
    let state = request::state()?;
    let signed_in = request::signed_in_user(&state, &request::session().await?).await.ok();
    members::preview(&state.db, &token, signed_in).await
}

/// The signed-in person accepts; the Admin Panel opens on the organization.
#[server(prefix = "/_fn", endpoint = "invitation/accept")]
pub async fn accept_invitation(token: String) -> Result<(), AppError> {
    use crate::server::{members, request, session};
    let state = request::state()?;
    let session = request::session().await?;
    let user = request::signed_in_user(&state, &session).await?;
    let org = members::accept(&state.db, &request::client(&state), &token, &user).await?;
    session::set_current_org(&session, org).await?;
    leptos_axum::redirect("/admin");
    Ok(())
}

/// A newcomer signs up from the invitation and lands in the organization.
#[server(prefix = "/_fn", endpoint = "invitation/sign_up")]
pub async fn sign_up_from_invitation(token: String, name: String, password: String) -> Result<(), AppError> {
    use crate::server::{members, request, session, sso};
    let state = request::state()?;
    let session = request::session().await?;
    let (user, org) =
        members::sign_up_and_accept(&state.db, &request::client(&state), &token, name, password).await?;
    session::log_in(&session, user.id, sso::SignInMethod::Password).await?;
    session::set_current_org(&session, org).await?;
    leptos_axum::redirect("/admin");
    Ok(())
}

/// Someone with an account logs in from the invitation and accepts it.
#[server(prefix = "/_fn", endpoint = "invitation/log_in")]
pub async fn log_in_from_invitation(token: String, password: String) -> Result<(), AppError> {
    use crate::server::{accounts, members, request, session, sso};
    let state = request::state()?;
    let session = request::session().await?;
    let client = request::client(&state);
    let invited = members::preview(&state.db, &token, None).await?;
    let user = accounts::log_in(&state.db, &state.throttle, &client, &invited.email, password).await?;
    session::log_in(&session, user.id, sso::SignInMethod::Password).await?;
    let org = members::accept(&state.db, &client, &token, &user).await?;
    session::set_current_org(&session, org).await?;
    leptos_axum::redirect("/admin");
    Ok(())
}
