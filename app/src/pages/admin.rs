//! The Admin Panel (`/admin/...`): one organization at a time.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::{Redirect, A},
    hooks::{use_params_map, use_query_map},
};

use super::{
    api_keys::WorkspaceKeysPanel,
    billing::{BillingSection, WorkspaceLimitsPanel},
    groups::{GroupDetailSection, GroupsSection},
    layout::{Frame, NavGroup},
    loading,
    members::{MembersSection, SettingsSection},
    service_accounts::ServiceAccountsPanel,
    usage::UsageSection,
    usage::WorkspaceUsagePanel,
    ConfirmButton, Done, FieldError, FilterForm, FormError, FormErrors,
};
use crate::{
    api::{
        self,
        workspaces::{
            AddWorkspaceMember, ArchiveWorkspace, CreateWorkspace, PutWorkspaceMember, RemoveWorkspaceMember,
            RestoreWorkspace, UpdateWorkspace,
        },
        AUDIT_PAGE_SIZE,
    },
    error::AppError,
    ids::WorkspaceId,
    model::{AdminOverview, AuditEntry, Capabilities, OrgRole, WorkspaceRole},
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Workspaces,
    Members,
    Groups,
    Billing,
    Usage,
    AuditLog,
    Settings,
}

impl Section {
    fn href(self) -> &'static str {
        match self {
            Self::Workspaces => "/admin",
            Self::Members => "/admin/members",
            Self::Groups => "/admin/groups",
            Self::Billing => "/admin/billing",
            Self::Usage => "/admin/usage",
            Self::AuditLog => "/admin/audit-log",
            Self::Settings => "/admin/settings",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Workspaces => "Workspaces",
            Self::Members => "Members",
            Self::Groups => "Groups",
            Self::Billing => "Billing",
            Self::Usage => "Usage",
            Self::AuditLog => "Audit log",
            Self::Settings => "Settings",
        }
    }

    /// The sections `roles` may open, under the headings the product documents
    /// use: Admins all; Billing users Billing (only, unless they are also
    /// Members); Members their workspaces.
    fn visible_to(roles: &[OrgRole]) -> Vec<NavGroup> {
        let can = Capabilities::of(roles);
        let visible = |s: &Self| match s {
            Self::Workspaces => can.work,
            Self::Billing | Self::Usage => can.manage_billing,
            _ => can.administer,
        };
        [
            ("Manage", &[Self::Workspaces][..]),
            ("Administration", &[Self::Members, Self::Groups, Self::Settings, Self::AuditLog]),
            ("Subscriptions", &[Self::Billing, Self::Usage]),
        ]
        .into_iter()
        .map(|(heading, sections)| {
            (
                heading,
                sections.iter().filter(|s| visible(s)).map(|s| (s.href(), s.title())).collect::<Vec<_>>(),
            )
        })
        .filter(|(_, items)| !items.is_empty())
        .collect()
    }
}

#[component]
pub fn AdminWorkspacesPage() -> impl IntoView {
    view! { <AdminShell section=Section::Workspaces><Workspaces/></AdminShell> }
}

#[component]
pub fn AdminMembersPage() -> impl IntoView {
    view! { <AdminShell section=Section::Members><MembersSection/></AdminShell> }
}

#[component]
pub fn AdminGroupsPage() -> impl IntoView {
    view! { <AdminShell section=Section::Groups><GroupsSection/></AdminShell> }
}

#[component]
pub fn AdminGroupPage() -> impl IntoView {
    view! { <AdminShell section=Section::Groups detail=true><GroupDetailSection/></AdminShell> }
}

#[component]
pub fn AdminBillingPage() -> impl IntoView {
    view! { <AdminShell section=Section::Billing><BillingSection/></AdminShell> }
}

#[component]
pub fn AdminUsagePage() -> impl IntoView {
    view! { <AdminShell section=Section::Usage><UsageSection/></AdminShell> }
}

#[component]
pub fn AdminSettingsPage() -> impl IntoView {
    view! { <AdminShell section=Section::Settings><SettingsSection/></AdminShell> }
}

#[component]
pub fn AdminAuditLogPage() -> impl IntoView {
    view! { <AdminShell section=Section::AuditLog><AuditLog/></AdminShell> }
}

/// Checks who is here and frames a section. Sections read the overview from context.
#[component]
fn AdminShell(
    section: Section,
    /// One item of the section (a workspace, a group), which names itself.
    #[prop(optional)]
    detail: bool,
    children: ChildrenFn,
) -> impl IntoView {
    let overview = Resource::new(|| (), |_| api::get_admin_overview());
    let children = StoredValue::new(children);
    view! {
        <Title text=format!("{} · Admin Panel", section.title())/>
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(overview) => {
                        let visible = Section::visible_to(&overview.org.roles);
                        let first = visible.first().and_then(|(_, items)| items.first()).map(|(href, _)| *href);
                        let allowed = visible.iter().flat_map(|(_, items)| items).any(|(href, _)| *href == section.href());
                        // The Admin Panel's home, for a Billing user who is not a Member, is Billing.
                        if !allowed && section == Section::Workspaces && first == Some(Section::Billing.href()) {
                            return view! { <Redirect path=Section::Billing.href()/> }.into_any();
                        }
                        let roles = overview.org.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join(", ");
                        let frame = view! {
                            <Frame
                                brand="Chancery"
                                context=overview.org.name.clone()
                                context_testid="org-name"
                                who=format!("{} · {roles}", overview.user.name)
                                nav=visible
                                active=section.href()
                                title=match (detail, section) {
                                    (true, _) => None,
                                    (false, Section::Workspaces) => Some(overview.org.name.clone()),
                                    (false, _) => Some(section.title().to_string()),
                                }
                                elsewhere=overview.backoffice_access.then_some(("/backoffice", "Backoffice"))
                                switch_to=overview.other_orgs.clone()
                            >
                                {(!overview.email_verified).then(|| view! {
                                    <super::account::UnverifiedEmail email=overview.user.email.clone()/>
                                })}
                                {if allowed {
                                    provide_context(overview.clone());
                                    children.with_value(|children| children()).into_any()
                                } else {
                                    view! { <p class="form-error" role="alert">"Only Admins of this organization can open this page."</p> }.into_any()
                                }}
                            </Frame>
                        };
                        frame.into_any()
                    }
                    Err(AppError::Unauthenticated(_)) => view! { <Redirect path=super::log_in_and_return()/> }.into_any(),
                    Err(AppError::NotFound) => view! { <Redirect path="/onboarding"/> }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Workspaces() -> impl IntoView {
    let AdminOverview { org, .. } = expect_context::<AdminOverview>();
    let is_admin = org.roles.contains(&OrgRole::Admin);
    let create = ServerAction::<CreateWorkspace>::new();
    let restore = ServerAction::<RestoreWorkspace>::new();
    let create_errors = FormErrors::new(create, "new-workspace", &["name", "icon", "description"]);
    let overview = Resource::new(
        move || (create.version().get(), restore.version().get()),
        |_| api::get_admin_overview(),
    );
    let archived = Resource::new(move || restore.version().get(), |_| api::workspaces::archived_workspaces());
    view! {
        <p class="muted">"Organization ID " <code data-testid="org-id">{org.id.to_string()}</code></p>
        <h2>"Workspaces"</h2>
        {is_admin.then(|| view! {
            <ActionForm action=create node_ref=create_errors.emptied_on_success() attr:class="inline-form">
                <label>"New workspace" <input type="text" {..create_errors.field("name")} required placeholder="Name"/><FieldError of=create_errors field="name"/></label>
                <label>"Icon" <input type="text" {..create_errors.field("icon")} maxlength="16" placeholder="🧪" size="4"/><FieldError of=create_errors field="icon"/></label>
                <label>"Description" <input type="text" {..create_errors.field("description")} placeholder="What it is for"/><FieldError of=create_errors field="description"/></label>
                <button type="submit" disabled=move || create.pending().get()>"Create workspace"</button>
            </ActionForm>
            <FormError of=create_errors/>
        })}
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                overview.await.map(|overview| view! {
                    <table class="table">
                        <thead><tr><th>"Name"</th><th>"Description"</th><th>"Members"</th><th>"ID"</th></tr></thead>
                        <tbody>
                            {overview.workspaces.into_iter().map(|w| {
                                let name = format!("{} {}", w.icon, w.name).trim().to_string();
                                view! {
                                    <tr data-testid="workspace-row">
                                        <td>
                                            // Everyone sees only workspaces they may open.
                                            <A href=format!("/admin/workspaces/{}", w.id)>{name}</A>
                                            {w.is_default.then(|| view! { <span class="badge">"Default"</span> })}
                                        </td>
                                        <td>{w.description}</td>
                                        <td>{w.member_count}</td>
                                        <td><code>{w.id.to_string()}</code></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                })
            })}
        </Transition>
        <FormError of=restore/>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                archived.await.ok().filter(|list| !list.is_empty()).map(|list| view! {
                    <h2>"Archived workspaces"</h2>
                    <p class="muted">"Their API keys are refused. Restoring one brings it back as it was."</p>
                    <table class="table">
                        <thead><tr><th>"Name"</th><th>"Description"</th><th>"ID"</th><th>"Actions"</th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|w| view! {
                                <tr data-testid="archived-workspace-row">
                                    <td>
                                        <A href=format!("/admin/workspaces/{}", w.id)>{format!("{} {}", w.icon, w.name).trim().to_string()}</A>
                                        <span class="badge">"Archived"</span>
                                    </td>
                                    <td>{w.description}</td>
                                    <td><code>{w.id.to_string()}</code></td>
                                    <td>
                                        <ActionForm action=restore>
                                            <input type="hidden" name="workspace_id" value=w.id.to_string()/>
                                            <button type="submit" class="link" disabled=move || restore.pending().get()>"Restore"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                })
            })}
        </Transition>
    }
}

#[component]
pub fn AdminWorkspacePage() -> impl IntoView {
    view! { <AdminShell section=Section::Workspaces detail=true><WorkspaceDetailSection/></AdminShell> }
}

/// One workspace: edit it, staff it, archive it.
#[component]
fn WorkspaceDetailSection() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|id| id.parse::<WorkspaceId>().ok()));
    let update = ServerAction::<UpdateWorkspace>::new();
    let put = ServerAction::<PutWorkspaceMember>::new();
    let add = ServerAction::<AddWorkspaceMember>::new();
    let remove = ServerAction::<RemoveWorkspaceMember>::new();
    let archive = ServerAction::<ArchiveWorkspace>::new();
    let restore = ServerAction::<RestoreWorkspace>::new();
    let update_errors = FormErrors::new(update, "edit-workspace", &["name", "icon", "description"]);
    let add_errors = FormErrors::new(add, "add-workspace-member", &["email"]);
    let query = use_query_map();
    let page = move || query.with(|q| q.get("page").and_then(|p| p.parse::<i64>().ok()));
    let detail = Resource::new(
        move || {
            (
                id(),
                page(),
                update.version().get(),
                put.version().get(),
                add.version().get(),
                remove.version().get(),
                restore.version().get(),
            )
        },
        |(id, page, ..)| async move {
            match id {
                Some(id) => api::workspaces::get_workspace_detail(id, page).await,
                None => Err(AppError::NotFound),
            }
        },
    );
    view! {
        <FormError of=update_errors/>
        <FormError of=put/>
        <FormError of=add_errors/>
        <FormError of=remove/>
        <Done value=remove.value() text="Removed from the workspace."/>
        <FormError of=archive/>
        <FormError of=restore/>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                detail.await.map(|d| {
                    let ws_id = d.workspace.id;
                    let is_default = d.workspace.is_default;
                    let archived = d.workspace.archived;
                    // Organization and workspace Admins run it; an archived one is
                    // read-only until an Organization Admin restores it.
                    let administers = d.manages;
                    let (name, icon, description) =
                        (d.workspace.name.clone(), d.workspace.icon.clone(), d.workspace.description.clone());
                    view! {
                        <Title text=d.workspace.name.clone()/>
                        <h1 data-testid="workspace-name">{format!("{} {}", d.workspace.icon, d.workspace.name).trim().to_string()}</h1>
                        {archived.then(|| view! {
                            <div class="notice warning" role="status" data-testid="workspace-archived">
                                <p>"This workspace is archived: its API keys are refused and nothing here can be changed."</p>
                                {d.administers.then(|| view! {
                                    <ActionForm action=restore>
                                        <input type="hidden" name="workspace_id" value=ws_id.to_string()/>
                                        <button type="submit" disabled=move || restore.pending().get()>"Restore workspace"</button>
                                    </ActionForm>
                                })}
                            </div>
                        })}
                        {administers.then(|| view! {
                            <ActionForm action=update attr:class="inline-form">
                                <input type="hidden" name="workspace_id" value=ws_id.to_string()/>
                                <label>"Name" <input type="text" {..update_errors.field("name")} required value=name/><FieldError of=update_errors field="name"/></label>
                                <label>"Icon" <input type="text" {..update_errors.field("icon")} maxlength="16" size="4" value=icon/><FieldError of=update_errors field="icon"/></label>
                                <label>"Description" <input type="text" {..update_errors.field("description")} value=description/><FieldError of=update_errors field="description"/></label>
                                <button type="submit" disabled=move || update.pending().get()>"Save"</button>
                            </ActionForm>
                        })}
                        {(!administers && !d.workspace.description.is_empty()).then(|| view! {
                            <p class="muted">{d.workspace.description.clone()}</p>
                        })}
                        <h2>"Members"</h2>
                        {(d.members.total > d.members.page_size).then(|| {
                            let pages = (d.members.total + d.members.page_size - 1) / d.members.page_size;
                            view! { <p class="muted" data-testid="workspace-members-total">{format!("{} members, page {} of {pages}", d.members.total, d.members.page)}</p> }
                        })}
                        <table class="table">
                            <thead><tr><th>"Name"</th><th>"Email"</th><th>"Role"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {d.members.items.clone().into_iter().map(|m| {
                                    let (user, user2) = (m.user_id.to_string(), m.user_id.to_string());
                                    let email = m.email.clone();
                                    let (ws, ws2) = (ws_id.to_string(), ws_id.to_string());
                                    let other = if m.role == WorkspaceRole::Admin { WorkspaceRole::Member } else { WorkspaceRole::Admin };
                                    view! {
                                        <tr data-testid="workspace-member-row">
                                            <td>{m.name}</td>
                                            <td>{m.email}</td>
                                            <td>{m.role.label()}</td>
                                            <td>
                                                {administers.then(|| view! {
                                                    <ActionForm action=put>
                                                        <input type="hidden" name="workspace_id" value=ws/>
                                                        <input type="hidden" name="user_id" value=user/>
                                                        <input type="hidden" name="role" value=other.as_str()/>
                                                        <button type="submit" class="link" disabled=move || put.pending().get()>{format!("Make {}", other.label())}</button>
                                                    </ActionForm>
                                                })}
                                                {(administers && !is_default).then(|| view! {
                                                    <ActionForm action=remove>
                                                        <input type="hidden" name="workspace_id" value=ws2/>
                                                        <input type="hidden" name="user_id" value=user2/>
                                                        <ConfirmButton label="Remove" subject=email.clone()
                                                            question=format!("Remove {email} from this workspace?")
                                                            consequence="They lose this workspace at once (unless a group grants it), and their keys here stop working."
                                                            confirm="Remove from workspace"/>
                                                    </ActionForm>
                                                })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <p class="pager">
                            {(d.members.page > 1).then(|| view! {
                                <A href=format!("/admin/workspaces/{ws_id}?page={}", d.members.page - 1)>"← Previous"</A>
                            })}
                            {d.members.has_next().then(|| view! {
                                <A href=format!("/admin/workspaces/{ws_id}?page={}", d.members.page + 1)>"Next →"</A>
                            })}
                        </p>
                        {d.manages.then(|| view! {
                            <ActionForm action=add node_ref=add_errors.emptied_on_success() attr:class="inline-form">
                                <input type="hidden" name="workspace_id" value=ws_id.to_string()/>
                                <label>"Add a member"
                                    <input type="email" {..add_errors.field("email")} required placeholder="colleague@example.com"/><FieldError of=add_errors field="email"/>
                                </label>
                                <label>"Role"
                                    <select name="role">
                                        <option value="member">"Member"</option>
                                        <option value="admin">"Admin"</option>
                                    </select>
                                </label>
                                <button type="submit" disabled=move || add.pending().get()>"Add to workspace"</button>
                            </ActionForm>
                        })}
                    }
                })
            })}
        </Transition>
        // Outside the detail's Transition: resources made while a Suspend resolves
        // are created in a different order by the server and the browser, which
        // breaks hydration.
        {move || id().map(|workspace_id| view! {
            <WorkspaceKeysPanel workspace_id/>
            <ServiceAccountsPanel workspace_id/>
            <WorkspaceLimitsPanel workspace_id/>
            <WorkspaceUsagePanel workspace_id/>
        })}
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                // Group grants and archiving are the organization's Admins' business.
                detail.await.ok().filter(|d| d.administers && !d.workspace.archived).map(|d| {
                    let ws_id = d.workspace.id;
                    let is_default = d.workspace.is_default;
                    view! {
                        <h2>"Groups with access"</h2>
                        {if d.groups.is_empty() {
                            view! { <p class="muted">"No group grants this workspace. Grant one from its group's page."</p> }.into_any()
                        } else {
                            view! {
                                <table class="table">
                                    <thead><tr><th>"Group"</th><th>"Role"</th></tr></thead>
                                    <tbody>
                                        {d.groups.into_iter().map(|g| view! {
                                            <tr data-testid="workspace-group-row">
                                                <td><A href=format!("/admin/groups/{}", g.group_id)>{g.group_name}</A></td>
                                                <td>{g.role.label()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                        {if is_default {
                            view! { <p class="hint">"The Default workspace includes everyone and cannot be archived."</p> }.into_any()
                        } else {
                            view! {
                                <ActionForm action=archive>
                                    <input type="hidden" name="workspace_id" value=ws_id.to_string()/>
                                    <ConfirmButton label="Archive workspace" class="danger-button"
                                        question=format!("Archive {}?", d.workspace.name)
                                        consequence=match d.working_keys {
                                            1 => "Its 1 working API key stops working at once (403). You can restore the workspace later; revoked keys stay revoked.".to_string(),
                                            n => format!("Its {n} working API keys stop working at once (403). You can restore the workspace later; revoked keys stay revoked."),
                                        }
                                        confirm="Archive workspace"/>
                                </ActionForm>
                            }.into_any()
                        }}
                    }
                })
            })}
        </Transition>
    }
}

/// Filters live in the address (`?actor=&action=&from=&to=&cursor=`), so a view
/// can be bookmarked; `cursor` is the last event of the newer page before.
#[component]
fn AuditLog() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let cursor = move || param("cursor").parse::<i64>().ok();
    let events = Resource::new(
        move || (param("actor"), param("action"), param("from"), param("to"), cursor()),
        |(actor, action, from, to, cursor)| api::get_audit_log(actor, action, from, to, cursor),
    );
    let link = move |cursor: Option<i64>, csv: bool| {
        let mut pairs: Vec<(String, String)> = ["actor", "action", "from", "to"]
            .into_iter()
            .map(|name| (name.to_string(), param(name)))
            .filter(|(_, value)| !value.is_empty())
            .collect();
        if let Some(cursor) = cursor {
            pairs.push(("cursor".into(), cursor.to_string()));
        }
        let base = if csv { "/admin/audit-log.csv" } else { "/admin/audit-log" };
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        if query.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", query.join("&"))
        }
    };
    view! {
        <FilterForm action="/admin/audit-log">
            <label>"Actor" <input type="search" name="actor" placeholder="email or key name" prop:value=move || param("actor")/></label>
            <label>"Action" <input type="search" name="action" placeholder="e.g. user.log_in or organization." prop:value=move || param("action")/></label>
            <label>"From" <input type="date" name="from" prop:value=move || param("from")/></label>
            <label>"To" <input type="date" name="to" prop:value=move || param("to")/></label>
            <button type="submit">"Filter"</button>
            <a href=move || link(None, true) rel="external" download class="button-link">"Export CSV"</a>
        </FilterForm>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match events.await {
                    Ok(page) => {
                        let whole = cursor().is_none() && page.next.is_none();
                        let summary = format!("{} event(s){}", page.items.len(), if whole { "" } else { " on this page" });
                        let newest = cursor().is_some().then(|| link(None, false));
                        let older = page.next.map(|last| link(Some(last), false));
                        view! {
                            <p class="muted" data-testid="audit-total">{summary}</p>
                            <table class="table">
                                <thead><tr><th>"Time"</th><th>"Actor"</th><th>"Action"</th><th>"Target"</th><th>"IP"</th><th>"Details"</th></tr></thead>
                                <tbody>{page.items.into_iter().map(|e| view! { <AuditRow entry=e/> }).collect_view()}</tbody>
                            </table>
                            <p class="pager">
                                {newest.map(|href| view! { <A href=href>"← Newest"</A> })}
                                {older.map(|href| view! { <A href=href>"Older →"</A> })}
                            </p>
                        }.into_any()
                    }
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
        <p class="hint">{format!("{AUDIT_PAGE_SIZE} events per page. Events cannot be changed or deleted.")}</p>
    }
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    let actor = match entry.actor_type.as_str() {
        "operator" => "Platform operator".to_string(),
        _ => entry.actor_label.clone(),
    };
    let summary = crate::audit_events::find(&entry.action).map(|event| event.summary);
    let kind = entry.target_type.replace('_', " ");
    let id = entry.target_id.clone().unwrap_or_default();
    // By name where it has one, the id on hover; else by id.
    let target = match entry.target_name {
        Some(name) => view! { <span title=format!("{kind} {id}")>{name}</span> }.into_any(),
        None => view! { <code>{id}</code> }.into_any(),
    };
    view! {
        <tr data-testid="audit-row">
            <td>{entry.created_at.display()}</td>
            <td>{actor}</td>
            <td><code title=summary>{entry.action}</code></td>
            <td data-testid="audit-target"><span class="muted">{kind}</span> " " {target}</td>
            <td>{entry.ip.unwrap_or_default()}</td>
            <td>
                {(!entry.facts.is_empty()).then(|| view! {
                    <dl class="facts" data-testid="audit-facts">
                        {entry.facts.into_iter().map(|(what, value)| view! { <dt>{what}</dt><dd>{value}</dd> }).collect_view()}
                    </dl>
                })}
            </td>
        </tr>
    }
}

/// Percent-encodes a query value.
pub(super) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
