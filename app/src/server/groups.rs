//! User groups of an organization: create, rename, delete, members, and grants
//! on workspaces with a workspace role. Every member of a group reaches the
//! group's workspaces; a person's role in a workspace is the union of their
//! direct grant and their groups' grants (see `workspaces::access_role`).
//! Managed by the organization's administrators.
//!
//! A group grants one kind of thing (its target, Mistral's `target_type`):
//! workspace roles, or an Organization role. Groups nest: the people of a
//! group nested in another are in that one too, at any depth, and never in a
//! cycle. Access is read from `group_people` (members, direct or through
//! nested groups); `user_group_closure` keeps that view a plain join.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AnyConnection, FromRow};

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz::{self, DirectorySync, OrgAdmin, OrgAuthority},
    db::{self, bind_all, Conditions, Db, Param},
    lifecycle, paging, workspaces,
};
use crate::{
    error::{AppError, AppResult},
    ids::{GroupId, OrgId, UserId, WorkspaceId},
    model::{GroupGrant, GroupMember, GroupSummary, GroupTarget, OrgRole, Page, WorkspaceRole},
    time::Timestamp,
    validate,
};

#[derive(FromRow)]
struct GroupRow {
    id: GroupId,
    name: String,
    description: String,
    created_at: Timestamp,
    member_count: i64,
    workspace_count: i64,
    scim_managed_at: Option<Timestamp>,
    organization_role: Option<String>,
    target_type: String,
}

impl From<GroupRow> for GroupSummary {
    fn from(row: GroupRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            description: row.description,
            member_count: row.member_count,
            workspace_count: row.workspace_count,
            created_at: row.created_at,
            managed_by_scim: row.scim_managed_at.is_some(),
            organization_role: row.organization_role.as_deref().and_then(OrgRole::parse),
            target: GroupTarget::parse(&row.target_type).unwrap_or_default(),
            parent_ids: Vec::new(),
        }
    }
}

const SELECT_GROUPS: &str =
    "SELECT g.id, g.name, g.description, g.created_at, g.scim_managed_at, g.organization_role, g.target_type,
        (SELECT COUNT(*) FROM user_group_members m WHERE m.group_id = g.id) AS member_count,
        (SELECT COUNT(*) FROM user_group_workspaces w JOIN workspaces ws ON ws.id = w.workspace_id
         WHERE w.group_id = g.id AND ws.archived_at IS NULL) AS workspace_count
    FROM user_groups g";

/// A group as created or edited.
#[derive(Clone, Debug, Default)]
pub struct GroupFields {
    pub name: String,
    pub description: String,
    pub target: GroupTarget,
    /// The groups it is nested in (Mistral's `parent_group_ids`, replaced
    /// whole); `None` leaves them as they are.
    pub parents: Option<Vec<GroupId>>,
}

fn clean(fields: &GroupFields) -> AppResult<GroupFields> {
    let description = fields.description.trim().to_string();
    if fields.description.chars().count() > 500 {
        return Err(AppError::invalid("description", "Description must be at most 500 characters."));
    }
    Ok(GroupFields {
        name: validate::label("name", "Group name", &fields.name)?,
        description,
        target: fields.target,
        parents: fields.parents.clone(),
    })
}

fn name_taken(name: &str) -> AppError {
    AppError::conflict("name", format!("A group named \"{name}\" already exists in this organization."))
}

/// The organization's groups by name; `search` keeps those whose name contains it.
#[tracing::instrument(name = "groups::groups_page", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn groups_page(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    search: Option<&str>,
    page: Option<i64>,
    page_size: Option<i64>,
) -> AppResult<Page<GroupSummary>> {
    let (page, page_size) = paging::page_bounds(page, page_size)?;
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let mut sql = Conditions::default();
    let org = sql.param(Param::Text(org_id.to_string()));
    sql.and(format!("g.org_id = {org}"));
    sql.contains(&["g.name_key"], search.unwrap_or_default());
    let count = format!("SELECT COUNT(*) FROM user_groups g WHERE {}", sql.text);
    let (total,): (i64,) = bind_all(sqlx::query_as(&count), sql.params.clone()).fetch_one(&mut *conn).await?;
    let limit = sql.param(Param::Int(page_size));
    let offset = sql.param(Param::Int((page - 1) * page_size));
    let list =
        format!("{SELECT_GROUPS} WHERE {} ORDER BY g.name_key, g.id LIMIT {limit} OFFSET {offset}", sql.text);
    let rows: Vec<GroupRow> = bind_all(sqlx::query_as(&list), sql.params).fetch_all(&mut *conn).await?;
    let items = with_parents(&mut conn, org_id, rows.into_iter().map(Into::into).collect()).await?;
    Ok(Page { items, page, page_size, total })
}

/// Fills in the groups each of `groups` is nested in.
async fn with_parents(
    conn: &mut AnyConnection,
    org_id: OrgId,
    mut groups: Vec<GroupSummary>,
) -> AppResult<Vec<GroupSummary>> {
    let edges = nesting_of(conn, org_id).await?;
    for group in &mut groups {
        group.parent_ids =
            edges.iter().filter(|(_, child)| *child == group.id).map(|(parent, _)| *parent).collect();
    }
    Ok(groups)
}

/// One group of the organization; another organization's is `NotFound`.
#[tracing::instrument(name = "groups::group", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn group(db: &Db, actor: &Actor, org_id: OrgId, id: GroupId) -> AppResult<GroupSummary> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    find(&mut conn, org_id, id).await
}

/// A group whose name and members Admins may change: not one the identity
/// provider manages through SCIM.
async fn find_editable(conn: &mut AnyConnection, org_id: OrgId, id: GroupId) -> AppResult<GroupSummary> {
    let group = find(conn, org_id, id).await?;
    require_editable(&group)?;
    Ok(group)
}

fn require_editable(group: &GroupSummary) -> AppResult<()> {
    if group.managed_by_scim {
        return Err(AppError::conflict(
            "group",
            format!(
                "\"{}\" is managed by your identity provider (SCIM): change its name and members there.",
                group.name
            ),
        ));
    }
    Ok(())
}

pub(super) async fn find(conn: &mut AnyConnection, org_id: OrgId, id: GroupId) -> AppResult<GroupSummary> {
    let row: Option<GroupRow> = sqlx::query_as(&format!("{SELECT_GROUPS} WHERE g.id = $1 AND g.org_id = $2"))
        .bind(id)
        .bind(org_id)
        .fetch_optional(&mut *conn)
        .await?;
    let group = row.ok_or(AppError::NotFound)?;
    Ok(with_parents(conn, org_id, vec![group.into()]).await?.remove(0))
}

#[tracing::instrument(name = "groups::create", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    fields: GroupFields,
) -> AppResult<GroupSummary> {
    let fields = clean(&fields)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let id = GroupId::new();
    let inserted = sqlx::query(
        "INSERT INTO user_groups (id, org_id, name, name_key, description, target_type, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(org_id)
    .bind(&fields.name)
    .bind(fields.name.to_lowercase())
    .bind(&fields.description)
    .bind(fields.target.code())
    .bind(Timestamp::now())
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => return Err(name_taken(&fields.name)),
        other => other?,
    };
    let event = AuditEvent::new("user_group.create", "user_group", id).in_org(org_id).with_details(
        serde_json::json!({ "name": fields.name, "description": fields.description, "target_type": fields.target.code() }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    if let Some(parents) = &fields.parents {
        renest(&mut tx, &admin, client, id, Nesting::Parents, |set| *set = parents.iter().copied().collect())
            .await?;
    }
    let created = find(&mut tx, org_id, id).await?;
    tx.commit().await?;
    Ok(created)
}

/// Renames a group, changes its description or its target, or the groups it
/// is nested in; the event keeps before and after. A group the identity
/// provider manages keeps its name and description; a group's target changes
/// only while it grants nothing of its present kind.
#[tracing::instrument(name = "groups::update", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn update(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    fields: GroupFields,
) -> AppResult<GroupSummary> {
    let fields = clean(&fields)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let before = find(&mut tx, org_id, id).await?;
    if (before.name.as_str(), before.description.as_str())
        != (fields.name.as_str(), fields.description.as_str())
    {
        require_editable(&before)?;
    }
    if before.target != fields.target {
        require_grants_nothing(&mut tx, &before).await?;
    }
    let updated = sqlx::query(
        "UPDATE user_groups SET name = $1, name_key = $2, description = $3, target_type = $4
         WHERE id = $5 AND org_id = $6",
    )
    .bind(&fields.name)
    .bind(fields.name.to_lowercase())
    .bind(&fields.description)
    .bind(fields.target.code())
    .bind(id)
    .bind(org_id)
    .execute(&mut *tx)
    .await;
    match updated {
        Err(e) if db::is_unique_violation(&e) => return Err(name_taken(&fields.name)),
        other => other?,
    };
    let event = AuditEvent::new("user_group.update", "user_group", id).in_org(org_id).with_details(
        serde_json::json!({
            "before": { "name": before.name, "description": before.description, "target_type": before.target.code() },
            "after": { "name": fields.name, "description": fields.description, "target_type": fields.target.code() },
        }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    if let Some(parents) = &fields.parents {
        renest(&mut tx, &admin, client, id, Nesting::Parents, |set| *set = parents.iter().copied().collect())
            .await?;
    }
    let after = find(&mut tx, org_id, id).await?;
    tx.commit().await?;
    Ok(after)
}

/// Refuses to change the target of a group that still grants something of
/// its present kind: what its people hold would silently change meaning.
async fn require_grants_nothing(conn: &mut AnyConnection, group: &GroupSummary) -> AppResult<()> {
    let still = match group.target {
        GroupTarget::Organization => group.organization_role.map(|role| format!("the {} role", role.label())),
        GroupTarget::Workspaces => {
            let (grants,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM user_group_workspaces WHERE group_id = $1")
                    .bind(group.id)
                    .fetch_one(conn)
                    .await?;
            (grants > 0).then(|| format!("{grants} workspace grant{}", if grants == 1 { "" } else { "s" }))
        }
    };
    match still {
        Some(what) => Err(AppError::conflict(
            "target_type",
            format!(
                "\"{}\" still grants {what}: take that away before it grants something else.",
                group.name
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses a grant the group's target does not allow.
fn require_target(group: &GroupSummary, target: GroupTarget) -> AppResult<()> {
    if group.target == target {
        return Ok(());
    }
    Err(AppError::conflict(
        "target_type",
        format!(
            "\"{}\" grants {} (target_type {}): change its target to grant {}.",
            group.name,
            group.target.label().to_lowercase(),
            group.target.code(),
            target.label().to_lowercase()
        ),
    ))
}

/// Grants every member of a group an Organization role (`None`: none; Mistral's
/// `organization_role`); a member who loses what it gave loses what came with
/// it (see `lifecycle`), and the Organization keeps at least one Admin. Groups
/// the identity provider manages too: Admins decide what a group grants.
#[tracing::instrument(name = "groups::set_organization_role", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn set_organization_role(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    role: Option<OrgRole>,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let group = find(&mut tx, org_id, id).await?;
    if role.is_some() {
        require_target(&group, GroupTarget::Organization)?;
    }
    sqlx::query("UPDATE user_groups SET organization_role = $1 WHERE id = $2 AND org_id = $3")
        .bind(role.map(OrgRole::as_str))
        .bind(id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let shown = |role: Option<OrgRole>| role.map(OrgRole::api_name);
    let event = AuditEvent::new("user_group.update", "user_group", id).in_org(org_id).with_details(
        serde_json::json!({ "organization_role": { "before": shown(group.organization_role), "after": shown(role) } }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    for user in people_of(&mut tx, id).await? {
        lifecycle::end_lost_access(&mut tx, &admin, client, user).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[tracing::instrument(name = "groups::delete", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn delete(db: &Db, actor: &Actor, client: &Client, org_id: OrgId, id: GroupId) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let group = find_editable(&mut tx, org_id, id).await?;
    erase(&mut tx, &admin, client, &group).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes `group` of `by`'s Organization, audited, and ends what its members
/// had only through it.
pub(super) async fn erase(
    conn: &mut AnyConnection,
    by: &impl OrgAuthority,
    client: &Client,
    group: &GroupSummary,
) -> AppResult<()> {
    let id = group.id;
    let people = people_of(conn, id).await?;
    sqlx::query("DELETE FROM user_group_nesting WHERE parent_group_id = $1 OR child_group_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let edges = nesting_of(conn, by.org_id()).await?;
    let pairs = closure(&edges).map_err(|_| AppError::Internal)?;
    write_closure(conn, by.org_id(), &pairs).await?;
    for table in ["user_group_members", "user_group_workspaces"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE group_id = $1")).bind(id).execute(&mut *conn).await?;
    }
    sqlx::query("DELETE FROM user_groups WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(by.org_id())
        .execute(&mut *conn)
        .await?;
    let event = AuditEvent::new("user_group.delete", "user_group", id).in_org(by.org_id()).with_details(
        serde_json::json!({ "name": group.name, "members": group.member_count, "workspaces": group.workspace_count }),
    );
    audit::record(&mut *conn, by, client, event).await?;
    for user in people {
        lifecycle::end_lost_access(conn, by, client, user).await?;
    }
    Ok(())
}

/// One page of a group's members by name, read in the Organization's order
/// by name (its index), keeping this group's: no page sorts the whole group.
#[tracing::instrument(name = "groups::members_page", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn members_page(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    id: GroupId,
    page: Option<i64>,
    page_size: Option<i64>,
) -> AppResult<Page<GroupMember>> {
    let (page, page_size) = super::paging::page_bounds(page, page_size)?;
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    find(&mut conn, org_id, id).await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM user_group_members WHERE group_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    let rows: Vec<(UserId, String, String)> = sqlx::query_as(
        "SELECT u.id, u.name, u.email FROM org_members m
         JOIN user_group_members gm ON gm.group_id = $1 AND gm.user_id = m.user_id
         JOIN users u ON u.id = m.user_id
         WHERE m.org_id = $2 ORDER BY m.name_key, m.user_id LIMIT $3 OFFSET $4",
    )
    .bind(id)
    .bind(org_id)
    .bind(page_size)
    .bind((page - 1) * page_size)
    .fetch_all(&mut *conn)
    .await?;
    let items = rows.into_iter().map(|(user_id, name, email)| GroupMember { user_id, name, email }).collect();
    Ok(Page { items, page, page_size, total })
}

/// Adds the Organization's member with this email to group `id`.
#[tracing::instrument(name = "groups::add_member_by_email", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn add_member_by_email(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    email: &str,
) -> AppResult<()> {
    let user = {
        let mut conn = db.pool().acquire().await?;
        // Only the Organization's Admins learn who is a member, of a group of theirs.
        authz::org_admin(&mut conn, actor, org_id).await?;
        find_editable(&mut conn, org_id, id).await?;
        super::members::member_by_email(&mut conn, org_id, email).await?
    };
    add_members(db, actor, client, org_id, id, &[user]).await.map(|_| ())
}

/// Adds organization members to a group; those already in are left as they are.
/// Returns how many joined.
#[tracing::instrument(name = "groups::add_members", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn add_members(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    users: &[UserId],
) -> AppResult<i64> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    find_editable(&mut tx, org_id, id).await?;
    let mut added = 0;
    for user in users {
        workspaces::require_org_member(&mut tx, org_id, *user, "user_uuids").await?;
        if join(&mut tx, &admin, client, id, *user, None).await? {
            added += 1;
        }
    }
    tx.commit().await?;
    Ok(added)
}

/// Removes people from a group. Returns how many left it.
#[tracing::instrument(name = "groups::remove_members", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn remove_members(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    users: &[UserId],
) -> AppResult<i64> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    find_editable(&mut tx, org_id, id).await?;
    let mut removed = 0;
    for user in users {
        if leave(&mut tx, &admin, client, id, *user, None).await? {
            removed += 1;
        }
    }
    tx.commit().await?;
    Ok(removed)
}

fn membership_details(id: GroupId, via: Option<&str>) -> serde_json::Value {
    match via {
        Some(via) => serde_json::json!({ "group_id": id, "via": via }),
        None => serde_json::json!({ "group_id": id }),
    }
}

/// Puts `user` in group `id`, audited (`via` says which directory did it);
/// false if they were in it already.
pub(super) async fn join(
    conn: &mut AnyConnection,
    by: &impl OrgAuthority,
    client: &Client,
    id: GroupId,
    user: UserId,
    via: Option<&str>,
) -> AppResult<bool> {
    let done = sqlx::query(
        "INSERT INTO user_group_members (group_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(user)
    .bind(Timestamp::now())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let event = AuditEvent::new("user_group.member.add", "user", user)
        .in_org(by.org_id())
        .with_details(membership_details(id, via));
    audit::record(&mut *conn, by, client, event).await?;
    Ok(true)
}

/// Takes `user` out of group `id`, audited, and ends what only the group gave
/// them; false if they were not in it.
pub(super) async fn leave(
    conn: &mut AnyConnection,
    by: &impl OrgAuthority,
    client: &Client,
    id: GroupId,
    user: UserId,
    via: Option<&str>,
) -> AppResult<bool> {
    let done = sqlx::query("DELETE FROM user_group_members WHERE group_id = $1 AND user_id = $2")
        .bind(id)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let event = AuditEvent::new("user_group.member.remove", "user", user)
        .in_org(by.org_id())
        .with_details(membership_details(id, via));
    audit::record(&mut *conn, by, client, event).await?;
    lifecycle::end_lost_access(conn, by, client, user).await?;
    Ok(true)
}

/// Makes `user`'s groups in the Organization exactly those of `names` that
/// exist there (compared without regard to case): their identity provider
/// lists them at each log-in. Leaving a group ends what it gave. Names of no
/// group are ignored: groups are made in Chancery.
pub(super) async fn follow_directory(
    conn: &mut AnyConnection,
    by: &DirectorySync,
    client: &Client,
    user: UserId,
    names: &[String],
) -> AppResult<()> {
    let wanted: std::collections::BTreeSet<String> =
        names.iter().map(|name| name.trim().to_lowercase()).collect();
    // Groups SCIM manages follow SCIM alone.
    let groups: Vec<(GroupId, String, i64)> = sqlx::query_as(
        "SELECT g.id, g.name_key,
                (SELECT COUNT(*) FROM user_group_members m WHERE m.group_id = g.id AND m.user_id = $2)
         FROM user_groups g WHERE g.org_id = $1 AND g.scim_managed_at IS NULL ORDER BY g.name_key, g.id",
    )
    .bind(by.org_id())
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    for (id, name_key, member) in groups {
        match (wanted.contains(&name_key), member > 0) {
            (true, false) => join(conn, by, client, id, user, Some("oidc")).await?,
            (false, true) => leave(conn, by, client, id, user, Some("oidc")).await?,
            _ => continue,
        };
    }
    Ok(())
}

const SELECT_GRANTS: &str = "SELECT g.id, g.name, w.id, w.name, gw.role
    FROM user_group_workspaces gw
    JOIN user_groups g ON g.id = gw.group_id
    JOIN workspaces w ON w.id = gw.workspace_id";

type GrantRow = (GroupId, String, WorkspaceId, String, String);

fn grant(row: GrantRow) -> GroupGrant {
    let (group_id, group_name, workspace_id, workspace_name, role) = row;
    GroupGrant {
        group_id,
        group_name,
        workspace_id,
        workspace_name,
        role: WorkspaceRole::parse(&role).unwrap_or(WorkspaceRole::Member),
    }
}

/// One page of the active workspaces a group grants, by workspace name.
#[tracing::instrument(name = "groups::grants_of_group", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn grants_of_group(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    id: GroupId,
    page: Option<i64>,
    page_size: Option<i64>,
) -> AppResult<Page<GroupGrant>> {
    let (page, page_size) = super::paging::page_bounds(page, page_size)?;
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    find(&mut conn, org_id, id).await?;
    let (total,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM user_group_workspaces gw JOIN workspaces w ON w.id = gw.workspace_id
         WHERE gw.group_id = $1 AND w.archived_at IS NULL",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let rows: Vec<GrantRow> = sqlx::query_as(&format!(
        "{SELECT_GRANTS} WHERE gw.group_id = $1 AND w.archived_at IS NULL ORDER BY w.name, w.id LIMIT $2 OFFSET $3"
    ))
    .bind(id)
    .bind(page_size)
    .bind((page - 1) * page_size)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Page { items: rows.into_iter().map(grant).collect(), page, page_size, total })
}

/// The groups that grant a workspace, by group name.
#[tracing::instrument(name = "groups::grants_on_workspace", skip_all, fields(actor = actor.kind(), org_id = %org_id, workspace_id = %workspace_id), err(level = "debug"))]
pub async fn grants_on_workspace(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    workspace_id: WorkspaceId,
) -> AppResult<Vec<GroupGrant>> {
    if workspaces::access(db, actor, org_id, workspace_id).await? != workspaces::Access::Administers {
        return Err(AppError::NotFound);
    }
    let rows: Vec<GrantRow> =
        sqlx::query_as(&format!("{SELECT_GRANTS} WHERE gw.workspace_id = $1 ORDER BY g.name_key, g.id"))
            .bind(workspace_id)
            .fetch_all(db.pool())
            .await?;
    Ok(rows.into_iter().map(grant).collect())
}

/// Grants a group a role on a workspace, or changes the role it grants.
/// True if the grant is new.
#[tracing::instrument(name = "groups::grant_workspace", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id, workspace_id = %workspace_id), err(level = "debug"))]
pub async fn grant_workspace(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    workspace_id: WorkspaceId,
    role: WorkspaceRole,
) -> AppResult<bool> {
    let target = workspaces::workspace(db, actor, org_id, workspace_id).await?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    workspaces::require_active(&mut tx, org_id, workspace_id).await?;
    require_target(&find(&mut tx, org_id, id).await?, GroupTarget::Workspaces)?;
    let before: Option<(String,)> =
        sqlx::query_as("SELECT role FROM user_group_workspaces WHERE group_id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(workspace_id)
            .fetch_optional(&mut *tx)
            .await?;
    if before.as_ref().is_some_and(|(r,)| r == role.as_str()) {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO user_group_workspaces (group_id, workspace_id, role, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (group_id, workspace_id) DO UPDATE SET role = excluded.role",
    )
    .bind(id)
    .bind(workspace_id)
    .bind(role.as_str())
    .bind(Timestamp::now())
    .execute(&mut *tx)
    .await?;
    let action =
        if before.is_some() { "user_group.workspace.update" } else { "user_group.workspace.provision" };
    let event = AuditEvent::new(action, "user_group", id).in_org(org_id).with_details(serde_json::json!({
        "workspace_id": workspace_id,
        "workspace_name": target.name,
        "before": before.as_ref().map(|(r,)| r),
        "after": role.as_str(),
    }));
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(before.is_none())
}

/// Ends a group's grant on a workspace; `NotFound` if it had none.
#[tracing::instrument(name = "groups::revoke_workspace", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id, workspace_id = %workspace_id), err(level = "debug"))]
pub async fn revoke_workspace(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    workspace_id: WorkspaceId,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    find(&mut tx, org_id, id).await?;
    let done = sqlx::query("DELETE FROM user_group_workspaces WHERE group_id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    let event = AuditEvent::new("user_group.workspace.deprovision", "user_group", id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "workspace_id": workspace_id }));
    audit::record(&mut tx, &admin, client, event).await?;
    end_members_lost_access(&mut tx, &admin, client, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Everyone group `id` includes: its members and those of groups nested in it.
async fn people_of(conn: &mut AnyConnection, id: GroupId) -> AppResult<Vec<UserId>> {
    let rows: Vec<(UserId,)> =
        sqlx::query_as("SELECT DISTINCT user_id FROM group_people WHERE group_id = $1 ORDER BY user_id")
            .bind(id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(user,)| user).collect())
}

/// After the group lost a grant: its members may have lost a workspace with it.
async fn end_members_lost_access(
    conn: &mut AnyConnection,
    admin: &OrgAdmin,
    client: &Client,
    id: GroupId,
) -> AppResult<()> {
    for user in people_of(conn, id).await? {
        lifecycle::end_lost_access(conn, admin, client, user).await?;
    }
    Ok(())
}

/// Which side of a group's nesting a change replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// The groups it is nested in (Mistral's `parent_group_ids`).
    Parents,
    /// The groups nested in it (Mistral's `/nested`, `child_group_uuids`).
    Children,
}

impl Nesting {
    fn field(self) -> &'static str {
        match self {
            Nesting::Parents => "parent_group_ids",
            Nesting::Children => "child_group_uuids",
        }
    }

    /// The (parent, child) edge between `group` and `other` on this side.
    fn edge(self, group: GroupId, other: GroupId) -> (GroupId, GroupId) {
        match self {
            Nesting::Parents => (other, group),
            Nesting::Children => (group, other),
        }
    }

    /// The group at the other end of `edge` if it touches `group` on this side.
    fn other(self, group: GroupId, (parent, child): (GroupId, GroupId)) -> Option<GroupId> {
        match self {
            Nesting::Parents if child == group => Some(parent),
            Nesting::Children if parent == group => Some(child),
            _ => None,
        }
    }
}

/// Changes the groups `id` is nested in, or those nested in it (`side`):
/// `change` edits the present set, read under the Organization's lock. A
/// change that would put a group inside itself is refused; people who leave a
/// group this way lose what it gave them.
#[tracing::instrument(name = "groups::set_nesting", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn set_nesting(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    side: Nesting,
    change: impl FnOnce(&mut BTreeSet<GroupId>),
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    find(&mut tx, org_id, id).await?;
    renest(&mut tx, &admin, client, id, side, change).await?;
    tx.commit().await?;
    Ok(())
}

/// A group's relatives for its page: the groups it is nested in, those nested
/// in it, and those that could be nested in it without making a cycle.
pub struct Relatives {
    pub parents: Vec<GroupSummary>,
    pub children: Vec<GroupSummary>,
    pub nestable: Vec<GroupSummary>,
}

#[tracing::instrument(name = "groups::relatives", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn relatives(db: &Db, actor: &Actor, org_id: OrgId, id: GroupId) -> AppResult<Relatives> {
    group(db, actor, org_id, id).await?;
    let all =
        paging::all_pages(|page, size| groups_page(db, actor, org_id, None, Some(page), Some(size))).await?;
    let mut conn = db.pool().acquire().await?;
    let edges = nesting_of(&mut conn, org_id).await?;
    let pairs = closure(&edges).map_err(|_| AppError::Internal)?;
    let mut relatives = Relatives { parents: Vec::new(), children: Vec::new(), nestable: Vec::new() };
    for group in all {
        let other = group.id;
        if edges.contains(&(other, id)) {
            relatives.parents.push(group);
        } else if edges.contains(&(id, other)) {
            relatives.children.push(group);
        } else if other != id && !pairs.contains(&(other, id)) {
            relatives.nestable.push(group);
        }
    }
    Ok(relatives)
}

async fn renest(
    conn: &mut AnyConnection,
    admin: &OrgAdmin,
    client: &Client,
    id: GroupId,
    side: Nesting,
    change: impl FnOnce(&mut BTreeSet<GroupId>),
) -> AppResult<()> {
    let (org_id, field) = (admin.org_id(), side.field());
    let edges = nesting_of(conn, org_id).await?;
    let before: BTreeSet<GroupId> = edges.iter().filter_map(|edge| side.other(id, *edge)).collect();
    let mut wanted = before.clone();
    change(&mut wanted);
    if before == wanted {
        return Ok(());
    }
    for other in wanted.difference(&before) {
        if *other == id {
            return Err(AppError::invalid(field, "A group cannot be nested in itself."));
        }
        match find(conn, org_id, *other).await {
            Err(AppError::NotFound) => {
                return Err(AppError::invalid(field, format!("{other} is not a group of this Organization.")))
            }
            other => other?,
        };
    }
    let mut next: Vec<_> = edges.iter().copied().filter(|edge| side.other(id, *edge).is_none()).collect();
    next.extend(wanted.iter().map(|other| side.edge(id, *other)));
    let pairs = match closure(&next) {
        Ok(pairs) => pairs,
        Err(looped) => {
            let name = find(conn, org_id, looped).await?.name;
            return Err(AppError::invalid(
                field,
                format!("That would nest \"{name}\" inside itself: a group cannot contain a group it is in."),
            ));
        }
    };
    // Whoever was in a child that leaves a parent may lose what the parent gave.
    let mut affected = BTreeSet::new();
    for gone in before.difference(&wanted) {
        let (_, child) = side.edge(id, *gone);
        affected.extend(people_of(conn, child).await?);
    }
    for gone in before.difference(&wanted) {
        let (parent, child) = side.edge(id, *gone);
        sqlx::query("DELETE FROM user_group_nesting WHERE parent_group_id = $1 AND child_group_id = $2")
            .bind(parent)
            .bind(child)
            .execute(&mut *conn)
            .await?;
    }
    for new in wanted.difference(&before) {
        let (parent, child) = side.edge(id, *new);
        sqlx::query("INSERT INTO user_group_nesting (parent_group_id, child_group_id, created_at) VALUES ($1, $2, $3)")
            .bind(parent)
            .bind(child)
            .bind(Timestamp::now())
            .execute(&mut *conn)
            .await?;
    }
    write_closure(conn, org_id, &pairs).await?;
    let event = AuditEvent::new("user_group.update", "user_group", id)
        .in_org(org_id)
        .with_details(serde_json::json!({ field: { "before": before, "after": wanted } }));
    audit::record(&mut *conn, admin, client, event).await?;
    for user in affected {
        lifecycle::end_lost_access(conn, admin, client, user).await?;
    }
    Ok(())
}

/// The Organization's nesting, as (parent, child) edges.
async fn nesting_of(conn: &mut AnyConnection, org_id: OrgId) -> AppResult<Vec<(GroupId, GroupId)>> {
    Ok(sqlx::query_as(
        "SELECT n.parent_group_id, n.child_group_id FROM user_group_nesting n
         JOIN user_groups g ON g.id = n.parent_group_id WHERE g.org_id = $1
         ORDER BY n.parent_group_id, n.child_group_id",
    )
    .bind(org_id)
    .fetch_all(conn)
    .await?)
}

/// Every (ancestor, descendant) pair that nesting `edges` imply, a group not
/// being its own; `Err` names a group the edges would put inside itself.
fn closure(edges: &[(GroupId, GroupId)]) -> Result<BTreeSet<(GroupId, GroupId)>, GroupId> {
    let mut children: BTreeMap<GroupId, Vec<GroupId>> = BTreeMap::new();
    for (parent, child) in edges {
        children.entry(*parent).or_default().push(*child);
    }
    let mut pairs = BTreeSet::new();
    for (&ancestor, direct) in &children {
        let mut stack = direct.clone();
        while let Some(descendant) = stack.pop() {
            if descendant == ancestor {
                return Err(ancestor);
            }
            if pairs.insert((ancestor, descendant)) {
                stack.extend(children.get(&descendant).into_iter().flatten());
            }
        }
    }
    Ok(pairs)
}

/// Replaces the Organization's rows of `user_group_closure` with `pairs`.
async fn write_closure(
    conn: &mut AnyConnection,
    org_id: OrgId,
    pairs: &BTreeSet<(GroupId, GroupId)>,
) -> AppResult<()> {
    sqlx::query(
        "DELETE FROM user_group_closure WHERE ancestor_id IN (SELECT id FROM user_groups WHERE org_id = $1)",
    )
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    for (ancestor, descendant) in pairs {
        sqlx::query("INSERT INTO user_group_closure (ancestor_id, descendant_id) VALUES ($1, $2)")
            .bind(ancestor)
            .bind(descendant)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<const N: usize>() -> [GroupId; N] {
        let mut ids = [(); N].map(|_| GroupId::new());
        ids.sort();
        ids
    }

    #[test]
    fn closure_reaches_every_depth() {
        let [a, b, c, d] = ids();
        let pairs = closure(&[(a, b), (b, c), (d, c)]).unwrap();
        assert_eq!(pairs, BTreeSet::from([(a, b), (a, c), (b, c), (d, c)]));
    }

    #[test]
    fn closure_names_a_group_that_would_contain_itself() {
        let [a, b, c] = ids();
        assert!(closure(&[(a, b), (b, c), (c, a)]).is_err());
        assert!(closure(&[(a, b), (b, a)]).is_err());
        // Two paths to one group are not a cycle.
        assert!(closure(&[(a, b), (a, c), (b, c)]).is_ok());
    }

    #[test]
    fn nesting_sides_name_their_edges() {
        let [g, o] = ids();
        assert_eq!(Nesting::Parents.edge(g, o), (o, g));
        assert_eq!(Nesting::Children.edge(g, o), (g, o));
        assert_eq!(Nesting::Parents.other(g, (o, g)), Some(o));
        assert_eq!(Nesting::Children.other(g, (o, g)), None);
    }
}
