//! Authorization as values.
//!
//! A guard checks what an actor may do in one Organization or Enterprise
//! Account and returns a proof of it. Every change of state records its audit
//! event in its transaction, and `audit::record` takes a proof (`Authority`),
//! never a bare `Actor`: a change made without its check does not compile, and
//! the proof names the actor the audit log shows. Changes no guard covers have
//! proofs that say why they are allowed: the platform operator, a person on
//! their own account, workspace key access, Chancery itself.
//!
//! Guards run inside the transaction that writes and lock the row they vouch
//! for until it commits (PostgreSQL: `FOR NO KEY UPDATE`; SQLite's write
//! transactions already run one at a time, see `Db::begin`). So two Admins
//! demoting each other at once are decided one after the other, and rules such
//! as "the last Admin stays" hold when the change commits. Lock order, to
//! never deadlock: the Organization first, then its Enterprise Account.
//!
//! Anyone without the right is told the thing does not exist (`NotFound`).

use sqlx::AnyConnection;

use super::actor::Actor;
use crate::{
    error::{AppError, AppResult},
    ids::{EnterpriseId, OrgId, UserId, WorkspaceId},
    model::{Capabilities, OrgRole},
};

/// Proof that the actor administers an Organization: one of its Admins, or an
/// Admin API key of that Organization.
#[derive(Debug)]
pub struct OrgAdmin {
    actor: Actor,
    org_id: OrgId,
}

/// Proof that the actor manages an Organization's billing, limits and usage:
/// an Admin, a Billing user, or an Admin API key of that Organization.
#[derive(Debug)]
pub struct BillingManager {
    actor: Actor,
}

/// Proof that a person is an active member of an Enterprise Account and still
/// an Admin of at least one of its Organizations (checked at each use, not
/// only when they joined).
#[derive(Debug)]
pub struct EnterpriseMember {
    actor: Actor,
    user: UserId,
}

/// Whatever vouches for a change. The audit log takes one (`audit::record`),
/// and every change of state records its event, so no change can be written
/// without having been authorized: the proof names the actor the log shows.
pub trait Authority {
    fn actor(&self) -> &Actor;
}

/// Proof that the platform operator acts (the command line).
#[derive(Debug)]
pub struct PlatformOperator {
    actor: Actor,
}

/// Proof that a person acts on their own account: signing up, logging in,
/// accepting an invitation made out to their address. Its callers have
/// established who the person is (credentials, a session).
#[derive(Debug)]
pub struct OwnAccount {
    actor: Actor,
}

/// Proof that an Organization's identity provider vouches for a change to
/// one of its members: their groups, as the ID token of their log-in lists
/// them. The actor shown is the member; the details say `via`.
#[derive(Debug)]
pub struct DirectorySync {
    actor: Actor,
    org_id: OrgId,
}

/// Proof that the actor is the identity provider of an Organization holding
/// one of its SCIM tokens: it provisions people and the groups it manages
/// there, and nothing else (no Admin rights).
#[derive(Debug)]
pub struct Provisioner {
    actor: Actor,
    org_id: OrgId,
}

/// A proof that acts within one Organization: what `lifecycle` needs to end
/// the access a change took away.
pub trait OrgAuthority: Authority {
    fn org_id(&self) -> OrgId;
}

/// A refused attempt to sign in, recorded so Admins see attacks and
/// misconfigurations; it vouches for nothing else.
#[derive(Debug)]
pub struct SignInAttempt {
    actor: Actor,
}

/// Proof that someone may manage a workspace's keys (see `api_keys`): made
/// from the answer of `workspaces::access`.
#[derive(Debug)]
pub struct WorkspaceKeys {
    actor: Actor,
}

/// Proof that someone runs one workspace: an Admin of its Organization (or its
/// Admin API key), or a workspace Admin (directly or through a group) who is
/// still a member of the Organization. They manage its members and settings.
#[derive(Debug)]
pub struct WorkspaceAdmin {
    actor: Actor,
    org_id: OrgId,
}

/// Chancery itself, acting on rules set by people (spending alerts).
#[derive(Debug)]
pub struct Automatic {
    actor: Actor,
}

pub fn operator(actor: &Actor) -> AppResult<PlatformOperator> {
    match actor {
        Actor::Operator => Ok(PlatformOperator { actor: actor.clone() }),
        _ => Err(AppError::Forbidden),
    }
}

pub fn own_account(user: UserId, email: &str) -> OwnAccount {
    OwnAccount { actor: Actor::User { id: user, email: email.to_string() } }
}

/// Made by single sign-on once the provider's ID token for `member` was verified.
pub(super) fn directory_sync(org_id: OrgId, member: &OwnAccount) -> DirectorySync {
    DirectorySync { actor: member.actor.clone(), org_id }
}

pub fn sign_in_attempt(claimed: &str) -> SignInAttempt {
    SignInAttempt { actor: Actor::Unauthenticated { claimed: claimed.to_string() } }
}

pub(super) fn workspace_keys(actor: &Actor) -> WorkspaceKeys {
    WorkspaceKeys { actor: actor.clone() }
}

pub fn automatic() -> Automatic {
    Automatic { actor: Actor::Operator }
}

impl<T: Authority + ?Sized> Authority for &T {
    fn actor(&self) -> &Actor {
        (**self).actor()
    }
}
/// Every proof carries the actor it vouches for.
macro_rules! vouch_for_actor {
    ($($proof:ty),+) => {$(
        impl Authority for $proof {
            fn actor(&self) -> &Actor {
                &self.actor
            }
        }
    )+};
}
vouch_for_actor!(
    OrgAdmin,
    BillingManager,
    EnterpriseMember,
    PlatformOperator,
    OwnAccount,
    DirectorySync,
    Provisioner,
    SignInAttempt,
    WorkspaceKeys,
    WorkspaceAdmin,
    Automatic
);

impl OrgAdmin {
    pub fn org_id(&self) -> OrgId {
        self.org_id
    }
}

impl OrgAuthority for OrgAdmin {
    fn org_id(&self) -> OrgId {
        self.org_id
    }
}

impl OrgAuthority for WorkspaceAdmin {
    fn org_id(&self) -> OrgId {
        self.org_id
    }
}

impl OrgAuthority for Provisioner {
    fn org_id(&self) -> OrgId {
        self.org_id
    }
}

impl OrgAuthority for DirectorySync {
    fn org_id(&self) -> OrgId {
        self.org_id
    }
}

impl EnterpriseMember {
    pub fn user(&self) -> UserId {
        self.user
    }
}

/// The people who reach workspace `w` directly or through a group; used as a
/// condition on a `user_id` (the union of grants, see `workspaces::access_role`).
macro_rules! reaches {
    ($user:literal) => {
        concat!(
            "(EXISTS (SELECT 1 FROM workspace_members d WHERE d.workspace_id = w.id AND d.user_id = ", $user, ")
              OR EXISTS (SELECT 1 FROM user_group_workspaces gw JOIN group_people gm ON gm.group_id = gw.group_id
                         WHERE gw.workspace_id = w.id AND gm.user_id = ", $user, "))"
        )
    };
}
pub(super) use reaches;

/// The people who may use workspace `w` (and so its keys): the Organization's
/// Admins, and whoever reaches it. The rule `lifecycle` revokes keys by.
macro_rules! may_use_workspace {
    ($user:literal) => {
        concat!(
            "(EXISTS (SELECT 1 FROM effective_org_roles r WHERE r.org_id = w.org_id AND r.user_id = ",
            $user,
            " AND r.role = 'admin') OR ",
            $crate::server::authz::reaches!($user),
            ")"
        )
    };
}
pub(super) use may_use_workspace;

pub async fn org_admin(conn: &mut AnyConnection, actor: &Actor, org_id: OrgId) -> AppResult<OrgAdmin> {
    lock_org(conn, org_id).await?;
    if !capabilities(conn, actor, org_id).await?.administer {
        return Err(AppError::NotFound);
    }
    Ok(OrgAdmin { actor: actor.clone(), org_id })
}

/// See [`WorkspaceAdmin`]; `NotFound` for anyone else.
pub async fn workspace_admin(
    conn: &mut AnyConnection,
    actor: &Actor,
    org_id: OrgId,
    workspace_id: WorkspaceId,
) -> AppResult<WorkspaceAdmin> {
    lock_org(conn, org_id).await?;
    let (in_org,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM workspaces WHERE id = $1 AND org_id = $2")
        .bind(workspace_id)
        .bind(org_id)
        .fetch_one(&mut *conn)
        .await?;
    if in_org == 0 {
        return Err(AppError::NotFound);
    }
    if capabilities(conn, actor, org_id).await?.administer {
        return Ok(WorkspaceAdmin { actor: actor.clone(), org_id });
    }
    let Some(user) = actor.user_id() else { return Err(AppError::NotFound) };
    let (admin_grants,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM workspaces w JOIN org_members m ON m.org_id = w.org_id AND m.user_id = $3
         WHERE w.id = $1 AND w.org_id = $2 AND w.archived_at IS NULL AND (
             EXISTS (SELECT 1 FROM workspace_members d WHERE d.workspace_id = w.id AND d.user_id = $3 AND d.role = 'admin')
             OR EXISTS (SELECT 1 FROM user_group_workspaces gw JOIN group_people gm ON gm.group_id = gw.group_id
                        WHERE gw.workspace_id = w.id AND gm.user_id = $3 AND gw.role = 'admin'))",
    )
    .bind(workspace_id)
    .bind(org_id)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?;
    if admin_grants == 0 {
        return Err(AppError::NotFound);
    }
    Ok(WorkspaceAdmin { actor: actor.clone(), org_id })
}

/// The Organization's identity provider, holding one of its SCIM tokens.
pub async fn provisioner(conn: &mut AnyConnection, actor: &Actor, org_id: OrgId) -> AppResult<Provisioner> {
    match actor {
        Actor::ScimToken { org_id: token_org, .. } if *token_org == org_id => {
            lock_org(conn, org_id).await?;
            Ok(Provisioner { actor: actor.clone(), org_id })
        }
        _ => Err(AppError::NotFound),
    }
}

pub async fn billing_manager(
    conn: &mut AnyConnection,
    actor: &Actor,
    org_id: OrgId,
) -> AppResult<BillingManager> {
    lock_org(conn, org_id).await?;
    if !capabilities(conn, actor, org_id).await?.manage_billing {
        return Err(AppError::NotFound);
    }
    Ok(BillingManager { actor: actor.clone() })
}

pub async fn enterprise_member(
    conn: &mut AnyConnection,
    actor: &Actor,
    enterprise: EnterpriseId,
) -> AppResult<EnterpriseMember> {
    let user = actor.user_id().ok_or(AppError::Forbidden)?;
    lock_enterprise(conn, enterprise).await?;
    let (active,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM enterprise_members
         WHERE enterprise_account_id = $1 AND user_id = $2 AND accepted_at IS NOT NULL",
    )
    .bind(enterprise)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?;
    if active == 0 || !is_admin_of_linked_org(conn, enterprise, user).await? {
        return Err(AppError::NotFound);
    }
    Ok(EnterpriseMember { actor: actor.clone(), user })
}

/// Whether `user` is an Admin of at least one Organization linked to `enterprise`:
/// what membership of an Enterprise Account requires.
pub(super) async fn is_admin_of_linked_org(
    conn: &mut AnyConnection,
    enterprise: EnterpriseId,
    user: UserId,
) -> AppResult<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM effective_org_roles r JOIN organizations o ON o.id = r.org_id
         WHERE o.enterprise_account_id = $1 AND r.user_id = $2 AND r.role = $3",
    )
    .bind(enterprise)
    .bind(user)
    .bind(OrgRole::Admin.as_str())
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// What `actor` may do in `org_id`: an Admin API key everything in its own
/// Organization, a person what their roles there allow, anyone else nothing.
async fn capabilities(conn: &mut AnyConnection, actor: &Actor, org_id: OrgId) -> AppResult<Capabilities> {
    Ok(match actor {
        Actor::AdminApiKey { org_id: key_org, .. } if *key_org == org_id => Capabilities::ALL,
        Actor::User { id, .. } => {
            let held: Vec<(String,)> =
                sqlx::query_as("SELECT role FROM effective_org_roles WHERE org_id = $1 AND user_id = $2")
                    .bind(org_id)
                    .bind(id)
                    .fetch_all(conn)
                    .await?;
            let roles: Vec<OrgRole> = held.iter().filter_map(|(role,)| OrgRole::parse(role)).collect();
            Capabilities::of(&roles)
        }
        Actor::AdminApiKey { .. }
        | Actor::ScimToken { .. }
        | Actor::Operator
        | Actor::Unauthenticated { .. } => Capabilities::default(),
    })
}

/// Holds the Organization's row until the transaction ends (PostgreSQL only:
/// SQLite's write transactions are serialized as a whole).
pub(super) async fn lock_org(conn: &mut AnyConnection, org_id: OrgId) -> AppResult<()> {
    lock_row(conn, "SELECT id FROM organizations WHERE id = $1 FOR NO KEY UPDATE", &org_id.to_string()).await
}

/// Holds the Enterprise Account's row until the transaction ends (see `lock_org`).
pub(super) async fn lock_enterprise(conn: &mut AnyConnection, enterprise: EnterpriseId) -> AppResult<()> {
    lock_row(
        conn,
        "SELECT id FROM enterprise_accounts WHERE id = $1 FOR NO KEY UPDATE",
        &enterprise.to_string(),
    )
    .await
}

/// Holds the person's row until the transaction ends (see `lock_org`).
pub(super) async fn lock_user(conn: &mut AnyConnection, user_id: UserId) -> AppResult<()> {
    lock_row(conn, "SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE", &user_id.to_string()).await
}

async fn lock_row(conn: &mut AnyConnection, sql: &'static str, id: &str) -> AppResult<()> {
    // Outside a transaction (a read) the lock would end with the statement:
    // it would guard nothing and cost PostgreSQL a write and a commit.
    if conn.backend_name() == "PostgreSQL" && sqlx::Connection::is_in_transaction(&*conn) {
        sqlx::query(sql).bind(id).execute(conn).await?;
    }
    Ok(())
}
