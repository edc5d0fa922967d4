//! Groups the identity provider manages: it makes them, names them and says
//! who is in them (`scim_group_members`); Admins decide what they grant. The
//! people it lists who are members of the Organization are in the group
//! (`user_group_members`); a deprovisioned person is out of it until
//! provisioned again.

use std::collections::BTreeSet;

use sqlx::{AnyConnection, FromRow};

use super::{external_id, Listed, Window};
use crate::{
    error::{AppError, AppResult},
    ids::{GroupId, OrgId, UserId},
    server::{
        actor::{Actor, Client},
        audit::{self, AuditEvent},
        authz::{self, OrgAuthority, Provisioner},
        db::{self, Db},
        groups,
    },
    time::Timestamp,
    validate,
};

const VIA: Option<&str> = Some("scim");

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimGroup {
    pub id: GroupId,
    pub display_name: String,
    pub external_id: Option<String>,
    /// Who the provider says is in it, with their names; empty unless asked for.
    pub members: Vec<GroupMember>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct GroupMember {
    pub id: UserId,
    pub display: String,
}

/// What the provider sets on a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupFields {
    pub display_name: String,
    pub external_id: Option<String>,
    pub members: BTreeSet<UserId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupFilter {
    DisplayName(String),
    ExternalId(String),
}

impl GroupFilter {
    fn condition(&self) -> (&'static str, String) {
        match self {
            Self::DisplayName(name) => ("g.name_key = $2", name.trim().to_lowercase()),
            Self::ExternalId(id) => ("g.scim_external_id = $2", id.clone()),
        }
    }
}

type GroupRow = (GroupId, String, Option<String>, Timestamp, Option<Timestamp>);

const SELECT_GROUPS: &str = "SELECT g.id, g.name, g.scim_external_id, g.created_at, g.updated_at
    FROM user_groups g WHERE g.org_id = $1 AND g.scim_managed_at IS NOT NULL";

#[tracing::instrument(name = "scim::groups::list", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn list(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    filter: Option<&GroupFilter>,
    window: Window,
    with_members: bool,
) -> AppResult<Listed<ScimGroup>> {
    let mut conn = db.pool().acquire().await?;
    authz::provisioner(&mut conn, actor, org_id).await?;
    let (condition, value) = filter.map(GroupFilter::condition).unwrap_or(("$2 = $2", String::new()));
    let (total,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM user_groups g WHERE g.org_id = $1 AND g.scim_managed_at IS NOT NULL AND {condition}"
    ))
    .bind(org_id)
    .bind(&value)
    .fetch_one(&mut *conn)
    .await?;
    let rows: Vec<GroupRow> = sqlx::query_as(&format!(
        "{SELECT_GROUPS} AND {condition} ORDER BY g.created_at, g.id LIMIT $3 OFFSET $4"
    ))
    .bind(org_id)
    .bind(&value)
    .bind(window.count)
    .bind(window.offset())
    .fetch_all(&mut *conn)
    .await?;
    let mut resources = Vec::with_capacity(rows.len());
    for row in rows {
        resources.push(group(&mut conn, row, with_members).await?);
    }
    Ok(Listed { total, resources })
}

#[tracing::instrument(name = "scim::groups::get", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn get(db: &Db, actor: &Actor, org_id: OrgId, id: GroupId) -> AppResult<ScimGroup> {
    let mut conn = db.pool().acquire().await?;
    authz::provisioner(&mut conn, actor, org_id).await?;
    find(&mut conn, org_id, id).await
}

async fn find(conn: &mut AnyConnection, org_id: OrgId, id: GroupId) -> AppResult<ScimGroup> {
    let row: Option<GroupRow> = sqlx::query_as(&format!("{SELECT_GROUPS} AND g.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    group(conn, row.ok_or(AppError::NotFound)?, true).await
}

async fn group(conn: &mut AnyConnection, row: GroupRow, with_members: bool) -> AppResult<ScimGroup> {
    let (id, display_name, external_id, created_at, updated_at) = row;
    let members = if with_members {
        sqlx::query_as(
            "SELECT u.id, u.name AS display FROM scim_group_members s JOIN users u ON u.id = s.user_id
             WHERE s.group_id = $1 ORDER BY u.name, u.id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
    } else {
        Vec::new()
    };
    Ok(ScimGroup {
        id,
        display_name,
        external_id,
        members,
        created_at,
        updated_at: updated_at.unwrap_or(created_at),
    })
}

fn checked(fields: GroupFields) -> AppResult<GroupFields> {
    Ok(GroupFields {
        display_name: validate::label("displayName", "displayName", &fields.display_name)?,
        external_id: external_id(fields.external_id.as_deref())?,
        members: fields.members,
    })
}

fn name_taken(name: &str) -> AppError {
    AppError::conflict(
        "displayName",
        format!("A group named \"{name}\" already exists in this Organization."),
    )
}

#[tracing::instrument(name = "scim::groups::create", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    fields: GroupFields,
) -> AppResult<ScimGroup> {
    let fields = checked(fields)?;
    let mut tx = db.begin().await?;
    let by = authz::provisioner(&mut tx, actor, org_id).await?;
    let id = GroupId::new();
    let now = Timestamp::now();
    let inserted = sqlx::query(
        "INSERT INTO user_groups (id, org_id, name, name_key, description, created_at, updated_at,
                                  scim_managed_at, scim_external_id)
         VALUES ($1, $2, $3, $4, '', $5, $5, $5, $6)",
    )
    .bind(id)
    .bind(org_id)
    .bind(&fields.display_name)
    .bind(fields.display_name.to_lowercase())
    .bind(now)
    .bind(&fields.external_id)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => return Err(name_taken(&fields.display_name)),
        other => other?,
    };
    let event = AuditEvent::new("user_group.create", "user_group", id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "name": fields.display_name, "via": "scim" }));
    audit::record(&mut tx, &by, client, event).await?;
    set_members(&mut tx, &by, client, id, &fields.members).await?;
    let created = find(&mut tx, org_id, id).await?;
    tx.commit().await?;
    Ok(created)
}

/// Applies `change` to the group as it is now, under the Organization's lock:
/// a replacement (PUT) or a PATCH.
#[tracing::instrument(name = "scim::groups::change", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn change(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    change: impl FnOnce(&mut GroupFields) -> AppResult<()>,
) -> AppResult<ScimGroup> {
    let mut tx = db.begin().await?;
    let by = authz::provisioner(&mut tx, actor, org_id).await?;
    let before = find(&mut tx, org_id, id).await?;
    let mut fields = GroupFields {
        display_name: before.display_name.clone(),
        external_id: before.external_id.clone(),
        members: before.members.iter().map(|m| m.id).collect(),
    };
    change(&mut fields)?;
    let after = checked(fields)?;
    if (&after.display_name, &after.external_id) != (&before.display_name, &before.external_id) {
        let updated = sqlx::query(
            "UPDATE user_groups SET name = $1, name_key = $2, scim_external_id = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&after.display_name)
        .bind(after.display_name.to_lowercase())
        .bind(&after.external_id)
        .bind(Timestamp::now())
        .bind(id)
        .execute(&mut *tx)
        .await;
        match updated {
            Err(e) if db::is_unique_violation(&e) => return Err(name_taken(&after.display_name)),
            other => other?,
        };
        let event = AuditEvent::new("user_group.update", "user_group", id).in_org(org_id).with_details(
            serde_json::json!({
                "before": { "name": before.display_name, "external_id": before.external_id },
                "after": { "name": after.display_name, "external_id": after.external_id },
                "via": "scim",
            }),
        );
        audit::record(&mut tx, &by, client, event).await?;
    }
    if set_members(&mut tx, &by, client, id, &after.members).await? {
        sqlx::query("UPDATE user_groups SET updated_at = $1 WHERE id = $2")
            .bind(Timestamp::now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let group = find(&mut tx, org_id, id).await?;
    tx.commit().await?;
    Ok(group)
}

#[tracing::instrument(name = "scim::groups::delete", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn delete(db: &Db, actor: &Actor, client: &Client, org_id: OrgId, id: GroupId) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let by = authz::provisioner(&mut tx, actor, org_id).await?;
    let group = groups::find(&mut tx, org_id, id).await?;
    if !group.managed_by_scim {
        return Err(AppError::NotFound);
    }
    groups::erase(&mut tx, &by, client, &group).await?;
    tx.commit().await?;
    Ok(())
}

/// Makes the group's members `wanted` (people the provider knows in the
/// Organization); those who are members of the Organization join or leave
/// the group itself, audited. True if anything changed.
async fn set_members(
    conn: &mut AnyConnection,
    by: &Provisioner,
    client: &Client,
    id: GroupId,
    wanted: &BTreeSet<UserId>,
) -> AppResult<bool> {
    let listed = user_ids(conn, "SELECT user_id FROM scim_group_members WHERE group_id = $1", id).await?;
    // Only the people who join are looked up, not the whole Organization.
    for user in wanted.difference(&listed) {
        if standing(conn, by.org_id(), *user).await?.is_none() {
            return Err(AppError::invalid(
                "members",
                format!("No person with id {user} is provisioned here."),
            ));
        }
        sqlx::query("INSERT INTO scim_group_members (group_id, user_id) VALUES ($1, $2)")
            .bind(id)
            .bind(*user)
            .execute(&mut *conn)
            .await?;
    }
    for user in listed.difference(wanted) {
        sqlx::query("DELETE FROM scim_group_members WHERE group_id = $1 AND user_id = $2")
            .bind(id)
            .bind(*user)
            .execute(&mut *conn)
            .await?;
    }
    let inside = user_ids(conn, "SELECT user_id FROM user_group_members WHERE group_id = $1", id).await?;
    for user in wanted.difference(&inside) {
        if standing(conn, by.org_id(), *user).await? == Some(true) {
            groups::join(conn, by, client, id, *user, VIA).await?;
        }
    }
    for user in inside.difference(wanted) {
        groups::leave(conn, by, client, id, *user, VIA).await?;
    }
    Ok(wanted != &listed)
}

async fn user_ids(conn: &mut AnyConnection, sql: &str, group: GroupId) -> AppResult<BTreeSet<UserId>> {
    let rows: Vec<(UserId,)> = sqlx::query_as(sql).bind(group).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(user,)| user).collect())
}

/// `user` in the Organization: `None` if the provider does not know them,
/// else whether they are a member (deprovisioned people are not).
async fn standing(conn: &mut AnyConnection, org_id: OrgId, user: UserId) -> AppResult<Option<bool>> {
    let (member, known): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM org_members WHERE org_id = $1 AND user_id = $2),
                (SELECT COUNT(*) FROM scim_users WHERE org_id = $1 AND user_id = $2)",
    )
    .bind(org_id)
    .bind(user)
    .fetch_one(conn)
    .await?;
    Ok((member + known > 0).then_some(member > 0))
}

/// Puts a person provisioned again back in the managed groups the provider
/// lists them in.
pub(super) async fn restore_memberships(
    conn: &mut AnyConnection,
    by: &Provisioner,
    client: &Client,
    user: UserId,
) -> AppResult<()> {
    let listed: Vec<(GroupId,)> = sqlx::query_as(
        "SELECT s.group_id FROM scim_group_members s JOIN user_groups g ON g.id = s.group_id
         WHERE s.user_id = $1 AND g.org_id = $2 ORDER BY s.group_id",
    )
    .bind(user)
    .bind(by.org_id())
    .fetch_all(&mut *conn)
    .await?;
    for (group,) in listed {
        groups::join(conn, by, client, group, user, VIA).await?;
    }
    Ok(())
}
