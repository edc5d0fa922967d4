//! Members and invitations: `/users`, `/users/{user_id}`, `/users-invite`.

use app::{
    ids::{UserId, WorkspaceId},
    model::{Invitation, Member, MemberWorkspace, OrgRole, Slice},
    server::{members, state::AppState, workspaces},
    validate, AppError,
};
use axum::{
    extract::{Path, State},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{path_id, AdminKey, ApiError, ApiJson, ApiJsonArray, ApiQuery};

#[derive(Serialize, ToSchema)]
pub struct MemberOut {
    /// The person's id (Mistral's name for it).
    pub uuid: uuid::Uuid,
    /// The same id, as earlier versions named it.
    pub user_id: uuid::Uuid,
    pub email: String,
    pub name: String,
    /// Role names: `organization_admin`, `billing_manager`, `member`.
    pub role_names: Vec<&'static str>,
    /// Role UUIDs, as `GET /roles` lists them.
    pub roles: Vec<uuid::Uuid>,
    pub last_login_at: Option<String>,
    /// The active workspaces they reach, directly or through groups.
    pub workspaces: Vec<MemberWorkspaceOut>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberWorkspaceOut {
    pub uuid: uuid::Uuid,
    pub name: String,
    pub is_default: bool,
    /// `workspace_admin` or `workspace_member`: their grants united.
    pub role_names: Vec<&'static str>,
    pub roles: Vec<uuid::Uuid>,
}

impl MemberOut {
    fn new(m: Member, workspaces: Vec<MemberWorkspace>) -> Self {
        Self {
            uuid: m.user_id.0,
            user_id: m.user_id.0,
            email: m.email,
            name: m.name,
            role_names: m.roles.iter().map(|r| r.api_name()).collect(),
            roles: m.roles.iter().map(|r| r.uuid()).collect(),
            last_login_at: m.last_login_at.map(|t| t.rfc3339()),
            workspaces: workspaces
                .into_iter()
                .map(|w| MemberWorkspaceOut {
                    uuid: w.id.0,
                    name: w.name,
                    is_default: w.is_default,
                    role_names: vec![w.role.api_name()],
                    roles: vec![w.role.uuid()],
                })
                .collect(),
        }
    }

    /// `members` as the API shows them, each with their workspaces.
    async fn list(state: &AppState, key: &AdminKey, members: Vec<Member>) -> Result<Vec<Self>, ApiError> {
        let ids: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
        let mut reached = workspaces::reached_by(&state.db, &key.actor, key.org_id, &ids).await?;
        Ok(members
            .into_iter()
            .map(|m| {
                let theirs = reached.remove(&m.user_id).unwrap_or_default();
                Self::new(m, theirs)
            })
            .collect())
    }
}

#[derive(Serialize, ToSchema)]
pub struct InviteOut {
    pub uuid: uuid::Uuid,
    pub email: String,
    pub role_names: Vec<&'static str>,
    pub roles: Vec<uuid::Uuid>,
    /// Workspaces joined (as Member) on acceptance, besides the Default one.
    pub workspace_uuids: Vec<uuid::Uuid>,
    pub created_at: String,
    pub expires_at: String,
    /// Mistral's flag for `status` = `expired`.
    pub expired: bool,
    /// `pending` or `expired`.
    pub status: &'static str,
}

impl From<Invitation> for InviteOut {
    fn from(i: Invitation) -> Self {
        Self {
            uuid: i.id,
            email: i.email,
            role_names: i.roles.iter().map(|r| r.api_name()).collect(),
            roles: i.roles.iter().map(|r| r.uuid()).collect(),
            workspace_uuids: i.workspaces.iter().map(|w| w.0).collect(),
            created_at: i.created_at.rfc3339(),
            expires_at: i.expires_at.rfc3339(),
            expired: i.expired,
            status: if i.expired { "expired" } else { "pending" },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UsersOut {
    pub members: Vec<MemberOut>,
    pub invites: Vec<InviteOut>,
    pub page: i64,
    pub page_size: i64,
    /// Members matching the query.
    pub total: i64,
    /// More pending invitations than page 1 lists: pass this as `after` to
    /// `GET /users-invite` for the rest.
    pub invites_next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<i64>,
    /// Only this email (case-insensitive).
    pub email: Option<String>,
}

/// List members and pending invitations.
#[utoipa::path(get, path = "/users", tag = "users", params(UsersQuery), responses((status = 200, body = UsersOut)))]
pub async fn list_users(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(q): ApiQuery<UsersQuery>,
) -> Result<Json<UsersOut>, ApiError> {
    let filter = members::MemberFilter { email: q.email.clone(), ..Default::default() };
    let page = members::members_page(&state.db, &key.actor, key.org_id, &filter, q.page, q.page_size).await?;
    // Page 1 lists the oldest pending invitations too, a page's worth.
    let invites = if page.page == 1 {
        let email = q.email.as_deref();
        members::invitations(&state.db, &key.actor, key.org_id, email, None, page.page_size).await?
    } else {
        Slice { items: Vec::new(), next: None }
    };
    Ok(Json(UsersOut {
        members: MemberOut::list(&state, &key, page.items).await?,
        invites: invites.items.into_iter().map(Into::into).collect(),
        page: page.page,
        page_size: page.page_size,
        total: page.total,
        invites_next: invites.next,
    }))
}

/// Get one member.
#[utoipa::path(get, path = "/users/{user_id}", tag = "users",
    responses((status = 200, body = MemberOut), (status = 404, description = "Not a member of this Organization")))]
pub async fn get_user(
    State(state): State<AppState>,
    key: AdminKey,
    Path(user_id): Path<String>,
) -> Result<Json<MemberOut>, ApiError> {
    let id: UserId = path_id(&user_id)?;
    let member = members::member(&state.db, &key.actor, key.org_id, id).await?;
    let mut one = MemberOut::list(&state, &key, vec![member]).await?;
    Ok(Json(one.pop().ok_or(AppError::Internal)?))
}

/// Roles in a request body: `roles` (UUIDs) or `role_names`; `role` / `role_name`
/// are deprecated. Both kinds also take Mistral's legacy codes `A`, `B`, `M`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesIn {
    pub roles: Option<Vec<String>>,
    pub role_names: Option<Vec<String>>,
    #[schema(deprecated)]
    pub role: Option<String>,
    #[schema(deprecated)]
    pub role_name: Option<String>,
}

impl RolesIn {
    fn parse(self) -> Result<Vec<OrgRole>, AppError> {
        validate::org_role_selection(self.roles, self.role_names, self.role, self.role_name)
    }
}

/// Change a member's roles. The last Admin keeps the Admin role.
#[utoipa::path(patch, path = "/users/{user_id}", tag = "users", request_body = RolesIn,
    responses((status = 200, body = MemberOut), (status = 400, description = "Bad roles"),
              (status = 409, description = "Would leave the Organization without an Admin")))]
pub async fn update_user(
    State(state): State<AppState>,
    key: AdminKey,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<RolesIn>,
) -> Result<Json<MemberOut>, ApiError> {
    let id: UserId = path_id(&user_id)?;
    let roles = body.parse()?;
    members::set_roles(&state.db, &key.actor, &key.client, key.org_id, id, &roles).await?;
    get_user(State(state), key, Path(user_id)).await
}

/// One person to provision: Mistral's `POST /users` entry.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserIn {
    #[schema(format = Email)]
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Role UUIDs or legacy codes; or `role_names`.
    pub roles: Option<Vec<String>>,
    pub role_names: Option<Vec<String>>,
    #[schema(deprecated)]
    pub role: Option<String>,
    #[schema(deprecated)]
    pub role_name: Option<String>,
    /// Seats (`CHAT`, `MISTRAL_CODE`): Chancery has none; anything but an
    /// empty list is refused.
    #[serde(default)]
    pub subscription_types: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProvisionedOut {
    /// Each provisioned address (and those already members) with the person's id.
    pub email_to_user_id: std::collections::BTreeMap<String, uuid::Uuid>,
    /// Refused addresses, each with the reason: `address: reason`.
    pub invalid_emails: Vec<String>,
}

/// Provision people as members at once, without invitations (at most 100).
/// Only addresses in a domain this Organization verified are taken; an account
/// without a password is made where none exists (its owner sets one through
/// "Forgot password"). Others are listed in `invalid_emails`: invite them.
#[utoipa::path(post, path = "/users", tag = "users", request_body = Vec<NewUserIn>,
    responses((status = 200, body = ProvisionedOut), (status = 400, description = "Bad roles or seats, or more than 100")))]
pub async fn provision_users(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJsonArray(body): ApiJsonArray<NewUserIn>,
) -> Result<Json<ProvisionedOut>, ApiError> {
    let mut people = Vec::with_capacity(body.len());
    for entry in body {
        if !entry.subscription_types.is_empty() {
            return Err(AppError::invalid(
                "subscription_types",
                "Chancery has no seats: leave subscription_types out.",
            )
            .into());
        }
        let name = format!("{} {}", entry.first_name.trim(), entry.last_name.trim());
        people.push(members::NewMember {
            email: entry.email,
            name: name.trim().to_string(),
            roles: validate::org_role_selection(entry.roles, entry.role_names, entry.role, entry.role_name)?,
        });
    }
    let (provisioned, refused) =
        members::provision(&state.db, &key.actor, &key.client, key.org_id, &people).await?;
    Ok(Json(ProvisionedOut {
        email_to_user_id: provisioned.into_iter().map(|(email, id)| (email, id.0)).collect(),
        invalid_emails: refused.into_iter().map(|(email, reason)| format!("{email}: {reason}")).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct DeleteOut {
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct RemovedUserOut {
    pub message: String,
    /// Workspace API keys the member owned, revoked with the removal.
    pub api_keys_revoked: i64,
    /// Pending invitations the member had sent, revoked with the removal.
    pub invitations_revoked: i64,
}

/// Remove a member; their sessions end at once, and the workspace API keys they
/// own and the invitations they sent are revoked in the same change.
#[utoipa::path(delete, path = "/users/{user_id}", tag = "users",
    responses((status = 200, body = RemovedUserOut), (status = 409, description = "The last Admin")))]
pub async fn delete_user(
    State(state): State<AppState>,
    key: AdminKey,
    Path(user_id): Path<String>,
) -> Result<Json<RemovedUserOut>, ApiError> {
    let id: UserId = path_id(&user_id)?;
    let ended = members::remove(&state.db, &state.sessions, &key.actor, &key.client, key.org_id, id).await?;
    Ok(Json(RemovedUserOut {
        message: "Member removed.".into(),
        api_keys_revoked: ended.api_keys_revoked,
        invitations_revoked: ended.invitations_revoked,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteIn {
    /// One address, or several separated by commas or new lines.
    pub email: String,
    /// Role UUIDs or legacy codes; or `role_names`.
    pub roles: Option<Vec<String>>,
    pub role_names: Option<Vec<String>>,
    #[schema(deprecated)]
    pub role: Option<String>,
    #[schema(deprecated)]
    pub role_name: Option<String>,
    /// Workspaces of this Organization they join as Member on accepting,
    /// besides the Default one (an unknown or archived one is a 404).
    #[serde(default)]
    pub workspace_uuids: Vec<uuid::Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct InvitesCreatedOut {
    pub already_members: Vec<String>,
    /// Malformed, outside the allowed domains, or already invited: with the reason.
    pub invalid_emails: Vec<String>,
    pub invited_members_count: i64,
}

/// Invite people by email.
#[utoipa::path(post, path = "/users-invite", tag = "users", request_body = InviteIn,
    responses((status = 200, body = InvitesCreatedOut), (status = 400, description = "Bad roles")))]
pub async fn invite_users(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<InviteIn>,
) -> Result<Json<InvitesCreatedOut>, ApiError> {
    let roles = validate::org_role_selection(body.roles, body.role_names, body.role, body.role_name)?;
    let workspaces: Vec<WorkspaceId> = body.workspace_uuids.into_iter().map(WorkspaceId).collect();
    let mut out = InvitesCreatedOut {
        already_members: Vec::new(),
        invalid_emails: Vec::new(),
        invited_members_count: 0,
    };
    for email in body.email.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
        match members::invite(
            &state.db,
            &state.throttle,
            &key.actor,
            &key.client,
            key.org_id,
            &state.public_url,
            members::Invitee { email, roles: &roles, workspaces: &workspaces },
        )
        .await
        {
            Ok(_) => out.invited_members_count += 1,
            Err(AppError::Conflict { message, .. }) if message.contains("already a member") => {
                out.already_members.push(email.to_string())
            }
            Err(AppError::Invalid { message, .. } | AppError::Conflict { message, .. }) => {
                out.invalid_emails.push(format!("{email}: {message}"))
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(Json(out))
}

/// Revoke a pending invitation.
#[utoipa::path(delete, path = "/users-invite/{invite_uuid}", tag = "users",
    responses((status = 200, body = DeleteOut), (status = 404, description = "No such pending invitation")))]
pub async fn revoke_invite(
    State(state): State<AppState>,
    key: AdminKey,
    Path(invite_uuid): Path<String>,
) -> Result<Json<DeleteOut>, ApiError> {
    let id: uuid::Uuid = path_id(&invite_uuid)?;
    members::revoke(&state.db, &key.actor, &key.client, key.org_id, id).await?;
    Ok(Json(DeleteOut { message: "Invitation revoked.".into() }))
}

#[derive(Serialize, ToSchema)]
pub struct InvitesOut {
    pub invites: Vec<InviteOut>,
    /// The last invitation listed, when more follow: pass it as `after`.
    pub next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InvitesQuery {
    /// How many, 1 to 100 (100 unless told).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The invitation after which to list (the `next` of the previous answer).
    pub after: Option<uuid::Uuid>,
}

/// List pending (and expired, not yet revoked) invitations, oldest first.
#[utoipa::path(get, path = "/users-invite", tag = "users", params(InvitesQuery),
    responses((status = 200, body = InvitesOut)))]
pub async fn list_invites(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(q): ApiQuery<InvitesQuery>,
) -> Result<Json<InvitesOut>, ApiError> {
    let limit = q.limit.unwrap_or(app::server::paging::MAX_PAGE_SIZE);
    let pending = members::invitations(&state.db, &key.actor, key.org_id, None, q.after, limit).await?;
    Ok(Json(InvitesOut { invites: pending.items.into_iter().map(Into::into).collect(), next: pending.next }))
}
