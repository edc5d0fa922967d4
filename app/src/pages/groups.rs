//! The Admin Panel's Groups pages: the list, and one group with what it
//! grants (workspace roles or an Organization role), its members and the
//! groups nested in it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::A,
    hooks::{use_params_map, use_query_map},
};

use super::{loading, ConfirmButton, Done, FieldError, FormError, FormErrors};
use crate::{
    api::groups::{
        self, AddGroupMember, CreateGroup, DeleteGroup, GrantGroupWorkspace, NestGroup, RemoveGroupMember,
        RevokeGroupWorkspace, SetGroupOrganizationRole, SetGroupTarget, UnnestGroup, UpdateGroup,
    },
    error::AppError,
    ids::GroupId,
    model::{GroupSummary, GroupTarget, OrgRole, WorkspaceRole},
};

#[component]
pub fn GroupsSection() -> impl IntoView {
    let create = ServerAction::<CreateGroup>::new();
    let create_errors = FormErrors::new(create, "new-group", &["name", "description"]);
    let query = use_query_map();
    let page = move || query.with(|q| q.get("page").and_then(|p| p.parse::<i64>().ok()));
    let list = Resource::new(move || (page(), create.version().get()), |(page, _)| groups::list_groups(page));
    view! {
        <p class="hint">
            "Everyone in a group holds what it grants, on top of their own roles: workspace roles, or an Organization role. "
            "People in a group nested in another are in that one too."
        </p>
        <ActionForm action=create node_ref=create_errors.emptied_on_success() attr:class="inline-form">
            <label>"New group" <input type="text" {..create_errors.field("name")} required placeholder="Name"/><FieldError of=create_errors field="name"/></label>
            <label>"Description" <input type="text" {..create_errors.field("description")} placeholder="Who is in it"/><FieldError of=create_errors field="description"/></label>
            <TargetSelect current=GroupTarget::default()/>
            <button type="submit" disabled=move || create.pending().get()>"Create group"</button>
        </ActionForm>
        <FormError of=create_errors/>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                list.await.map(|list| {
                    if list.total == 0 {
                        return view! { <p class="muted">"No groups yet."</p> }.into_any();
                    }
                    let (shown, more) = (list.page, list.has_next());
                    view! {
                        <table class="table">
                            <thead><tr><th>"Name"</th><th>"Description"</th><th>"Members"</th><th>"Grants"</th></tr></thead>
                            <tbody>
                                {list.items.into_iter().map(|g| {
                                    let grants = grants(&g);
                                    view! {
                                    <tr data-testid="group-row">
                                        <td>
                                            <A href=format!("/admin/groups/{}", g.id)>{g.name}</A>
                                            {g.managed_by_scim.then(|| view! { " " <span class="badge">"Identity provider"</span> })}
                                        </td>
                                        <td>{g.description}</td>
                                        <td>{g.member_count}</td>
                                        <td>{grants}</td>
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                        <p class="pager">
                            {(shown > 1).then(|| view! { <A href=format!("/admin/groups?page={}", shown - 1)>"← Previous"</A> })}
                            {more.then(|| view! { <A href=format!("/admin/groups?page={}", shown + 1)>"Next →"</A> })}
                        </p>
                    }.into_any()
                })
            })}
        </Transition>
    }
}

/// What a group grants, in a few words.
fn grants(group: &GroupSummary) -> String {
    match (group.target, group.organization_role) {
        (GroupTarget::Workspaces, _) => {
            format!(
                "{} workspace{}",
                group.workspace_count,
                if group.workspace_count == 1 { "" } else { "s" }
            )
        }
        (GroupTarget::Organization, Some(role)) => format!("{} role", role.label()),
        (GroupTarget::Organization, None) => "No Organization role yet".into(),
    }
}

#[component]
fn TargetSelect(current: GroupTarget) -> impl IntoView {
    view! {
        <label>"Grants"
            <select name="target_type" data-testid="group-target">
                {GroupTarget::ALL.into_iter().map(|t| view! {
                    <option value=t.code() selected=t == current>{t.label()}</option>
                }).collect_view()}
            </select>
        </label>
    }
}

/// One group: rename it, change what it grants, its members and nested groups, delete it.
#[component]
pub fn GroupDetailSection() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|id| id.parse::<GroupId>().ok()));
    let query = use_query_map();
    let page = move || query.with(|q| q.get("page").and_then(|p| p.parse::<i64>().ok()));
    let update = ServerAction::<UpdateGroup>::new();
    let add = ServerAction::<AddGroupMember>::new();
    let remove = ServerAction::<RemoveGroupMember>::new();
    let grant = ServerAction::<GrantGroupWorkspace>::new();
    let revoke = ServerAction::<RevokeGroupWorkspace>::new();
    let delete = ServerAction::<DeleteGroup>::new();
    let set_role = ServerAction::<SetGroupOrganizationRole>::new();
    let set_target = ServerAction::<SetGroupTarget>::new();
    let nest = ServerAction::<NestGroup>::new();
    let unnest = ServerAction::<UnnestGroup>::new();
    let update_errors = FormErrors::new(update, "edit-group", &["name", "description"]);
    let add_errors = FormErrors::new(add, "add-group-member", &["email"]);
    let detail = Resource::new(
        move || {
            let versions = [
                update.version(),
                add.version(),
                remove.version(),
                grant.version(),
                revoke.version(),
                set_role.version(),
                set_target.version(),
                nest.version(),
                unnest.version(),
            ];
            (id(), page(), versions.map(|v| v.get()))
        },
        |(id, page, _)| async move {
            match id {
                Some(id) => groups::get_group_detail(id, page).await,
                None => Err(AppError::NotFound),
            }
        },
    );
    view! {
        <FormError of=update_errors/>
        <FormError of=add_errors/>
        <FormError of=remove/>
        <Done value=remove.value() text="Removed from the group."/>
        <FormError of=grant/>
        <FormError of=revoke/>
        <Done value=revoke.value() text="The group's access to the workspace is removed."/>
        <FormError of=delete/>
        <FormError of=set_role/>
        <FormError of=set_target/>
        <FormError of=nest/>
        <FormError of=unnest/>
        <Done value=unnest.value() text="Group taken out."/>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                detail.await.map(|d| {
                    let group_id = d.group.id;
                    let (members_page, more_members) = (d.members.page, d.members.has_next());
                    // The identity provider names it and says who is in it (SCIM): Admins decide what it grants.
                    let editable = !d.group.managed_by_scim;
                    let delete_question = format!("Delete {}?", d.group.name);
                    // Copy, so every form of the page can name the group.
                    let hidden = move || view! { <input type="hidden" name="group_id" value=group_id.to_string()/> };
                    view! {
                        <Title text=d.group.name.clone()/>
                        <h1 data-testid="group-name">{d.group.name.clone()}</h1>
                        {if editable {
                            view! {
                                <ActionForm action=update attr:class="inline-form">
                                    {hidden()}
                                    <label>"Name" <input type="text" {..update_errors.field("name")} required value=d.group.name.clone()/><FieldError of=update_errors field="name"/></label>
                                    <label>"Description" <input type="text" {..update_errors.field("description")} value=d.group.description.clone()/><FieldError of=update_errors field="description"/></label>
                                    <button type="submit" disabled=move || update.pending().get()>"Save"</button>
                                </ActionForm>
                            }.into_any()
                        } else {
                            view! {
                                <p class="notice" data-testid="group-managed">
                                    "Managed by your identity provider (SCIM): its name and members change there. "
                                    "You decide which workspaces it reaches."
                                </p>
                            }.into_any()
                        }}

                        {(!d.parents.is_empty()).then(|| view! {
                            <p data-testid="group-parents">
                                "Nested in "
                                {d.parents.into_iter().map(|p| view! {
                                    <A href=format!("/admin/groups/{}", p.id)>{p.name}</A>" "
                                }).collect_view()}
                                ": its people are in those groups too."
                            </p>
                        })}

                        <ActionForm action=set_target attr:class="inline-form">
                            {hidden()}
                            <TargetSelect current=d.group.target/>
                            <button type="submit" disabled=move || set_target.pending().get()>"Save what it grants"</button>
                        </ActionForm>
                        <p class="hint">"A group grants one kind: change it once the group grants nothing of the other."</p>

                        {(d.group.target == GroupTarget::Organization).then(|| view! {
                        <h2>"Organization role"</h2>
                        <ActionForm action=set_role attr:class="inline-form">
                            {hidden()}
                            <label>"Members hold" <select name="role" data-testid="group-organization-role">
                                <option value="" selected=d.group.organization_role.is_none()>"No Organization role"</option>
                                {OrgRole::ALL.into_iter().map(|role| view! {
                                    <option value=role.as_str() selected=d.group.organization_role == Some(role)>{role.label()}</option>
                                }).collect_view()}
                            </select></label>
                            <button type="submit" disabled=move || set_role.pending().get()>"Save role"</button>
                        </ActionForm>
                        <p class="hint">"Every member holds this role while in the group, beside their own. Taking it away ends what came with it."</p>
                        })}

                        <h2>"Members"</h2>
                        <table class="table">
                            <thead><tr><th>"Name"</th><th>"Email"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {d.members.items.into_iter().map(|m| view! {
                                    <tr data-testid="group-member-row">
                                        <td>{m.name}</td>
                                        <td>{m.email.clone()}</td>
                                        <td>
                                            {editable.then(|| view! {
                                                <ActionForm action=remove>
                                                    {hidden()}
                                                    <input type="hidden" name="user_id" value=m.user_id.to_string()/>
                                                    <ConfirmButton label="Remove" subject=m.email.clone()
                                                        question=format!("Remove {} from the group?", m.email)
                                                        consequence="They lose what the group grants them: the group's workspaces, unless granted otherwise."
                                                        confirm="Remove from group"/>
                                                </ActionForm>
                                            })}
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        <p class="pager">
                            {(members_page > 1).then(|| view! {
                                <A href=format!("/admin/groups/{group_id}?page={}", members_page - 1)>"← Previous"</A>
                            })}
                            {more_members.then(|| view! {
                                <A href=format!("/admin/groups/{group_id}?page={}", members_page + 1)>"Next →"</A>
                            })}
                        </p>
                        {editable.then(|| view! {
                            <ActionForm action=add node_ref=add_errors.emptied_on_success() attr:class="inline-form">
                                {hidden()}
                                <label>"Add a member"
                                    <input type="email" {..add_errors.field("email")} required placeholder="colleague@example.com"/><FieldError of=add_errors field="email"/>
                                </label>
                                <button type="submit" disabled=move || add.pending().get()>"Add to group"</button>
                            </ActionForm>
                        })}

                        {(d.group.target == GroupTarget::Workspaces).then(|| view! {
                        <h2>"Workspaces"</h2>
                        <table class="table">
                            <thead><tr><th>"Workspace"</th><th>"Role"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {d.workspaces.into_iter().map(|g| {
                                    let other = if g.role == WorkspaceRole::Admin { WorkspaceRole::Member } else { WorkspaceRole::Admin };
                                    let workspace_id = g.workspace_id;
                                    let name = g.workspace_name.clone();
                                    view! {
                                        <tr data-testid="group-workspace-row">
                                            <td>{g.workspace_name}</td>
                                            <td>{g.role.label()}</td>
                                            <td>
                                                <ActionForm action=grant>
                                                    {hidden()}
                                                    <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                                                    <input type="hidden" name="role" value=other.as_str()/>
                                                    <button type="submit" class="link" disabled=move || grant.pending().get()>{format!("Make {}", other.label())}</button>
                                                </ActionForm>
                                                <ActionForm action=revoke>
                                                    {hidden()}
                                                    <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                                                    <ConfirmButton label="Remove access" subject=format!("to {name}")
                                                        question=format!("Remove the group's access to {name}?")
                                                        consequence="The group's members lose this workspace, unless granted it otherwise."
                                                        confirm="Remove access"/>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        {(!d.open_workspaces.is_empty()).then(|| view! {
                            <ActionForm action=grant attr:class="inline-form">
                                {hidden()}
                                <label>"Grant a workspace"
                                    <select name="workspace_id">
                                        {d.open_workspaces.into_iter().map(|w| view! {
                                            <option value=w.id.to_string()>{w.name}</option>
                                        }).collect_view()}
                                    </select>
                                </label>
                                <label>"Role"
                                    <select name="role">
                                        <option value="member">"Member"</option>
                                        <option value="admin">"Admin"</option>
                                    </select>
                                </label>
                                <button type="submit" disabled=move || grant.pending().get()>"Grant access"</button>
                            </ActionForm>
                        })}
                        })}

                        <h2>"Nested groups"</h2>
                        <p class="hint">"People in a group nested here are in this group too, at any depth."</p>
                        {if d.children.is_empty() {
                            view! { <p class="muted">"No group is nested in this one."</p> }.into_any()
                        } else {
                            view! {
                                <table class="table">
                                    <thead><tr><th>"Group"</th><th>"Members"</th><th>"Actions"</th></tr></thead>
                                    <tbody>
                                        {d.children.into_iter().map(|c| {
    let name = c.name.clone();
    view! {
                                            <tr data-testid="nested-group-row">
                                                <td><A href=format!("/admin/groups/{}", c.id)>{c.name.clone()}</A></td>
                                                <td>{c.member_count}</td>
                                                <td>
                                                    <ActionForm action=unnest>
                                                        {hidden()}
                                                        <input type="hidden" name="child_id" value=c.id.to_string()/>
                                                        <ConfirmButton label="Take out" subject=name.clone()
                                                            question=format!("Take {name} out of this group?")
                                                            consequence="Its members lose what this group grants them, unless granted otherwise."
                                                            confirm="Take out"/>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }}).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                        {(!d.nestable.is_empty()).then(|| view! {
                            <ActionForm action=nest attr:class="inline-form">
                                {hidden()}
                                <label>"Nest a group"
                                    <select name="child_id">
                                        {d.nestable.into_iter().map(|g| view! {
                                            <option value=g.id.to_string()>{g.name}</option>
                                        }).collect_view()}
                                    </select>
                                </label>
                                <button type="submit" disabled=move || nest.pending().get()>"Nest group"</button>
                            </ActionForm>
                        })}

                        {editable.then(|| view! {
                            <ActionForm action=delete>
                                {hidden()}
                                <ConfirmButton label="Delete group" class="danger-button"
                                    question=delete_question
                                    consequence="Its members lose what it grants them (workspaces, roles), unless granted otherwise. This cannot be undone."
                                    confirm="Delete group"/>
                            </ActionForm>
                        })}
                    }
                })
            })}
        </Transition>
    }
}
