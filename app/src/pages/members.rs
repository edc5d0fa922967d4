//! The Admin Panel's Members and Settings sections.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_query_map};

use super::{admin::encode, loading, ConfirmButton, Done, FieldError, FilterForm, FormError, FormErrors};
use crate::{
    api::members::{
        self, InviteMember, RemoveMember, RenameOrganization, ResendInvitation, RevokeInvitation,
        RevokeOrgAdminKey, SetAllowedDomains, SetKeyPolicy, SetMemberRoles,
    },
    model::{AccessEnded, AdminOverview, Invitation, Member, OrgRole},
    time::Timestamp,
};

/// One checkbox per role, named `role_admin`, `role_billing`, `role_member`.
#[component]
fn RoleBoxes(checked: Vec<OrgRole>) -> impl IntoView {
    OrgRole::ALL
        .into_iter()
        .map(|role| {
            let name = format!("role_{}", role.as_str());
            view! {
                <label class="check">
                    <input type="checkbox" name=name checked=checked.contains(&role)/>
                    {role.label()}
                </label>
            }
        })
        .collect_view()
}

/// Members, 50 a page by name, searchable and filtered by role; the filters
/// live in the address (`?q=&role=&status=&page=`). Invitations are listed
/// apart, paged on their own: status "Pending" shows only them, "Active" only
/// members.
#[component]
pub(super) fn MembersSection() -> impl IntoView {
    let invite = ServerAction::<InviteMember>::new();
    let set_roles = ServerAction::<SetMemberRoles>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let resend = ServerAction::<ResendInvitation>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let invite_errors = FormErrors::new(invite, "invite", &["email"]);
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let page = move || param("page").parse::<i64>().unwrap_or(1).max(1);
    let list = Resource::new(
        move || (param("q"), param("role"), page(), set_roles.version().get(), remove.version().get()),
        |(search, role, page, ..)| members::list_members(Some(search), Some(role), Some(page)),
    );
    // Invitations page apart, oldest first past the one in `?invites=`.
    let invites_after = move || param("invites").parse::<uuid::Uuid>().ok();
    let invitations = Resource::new(
        move || (invites_after(), invite.version().get(), resend.version().get(), revoke.version().get()),
        |(after, ..)| members::list_invitations(after),
    );
    let status = move || param("status");
    let link = move |page: i64| {
        let mut pairs: Vec<String> = ["q", "role", "status"]
            .into_iter()
            .map(|name| (name, param(name)))
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={}", encode(&value)))
            .collect();
        pairs.push(format!("page={page}"));
        format!("/admin/members?{}", pairs.join("&"))
    };
    view! {
        <ActionForm action=invite node_ref=invite_errors.emptied_on_success() attr:class="inline-form">
            <label>"Invite by email" <input type="email" {..invite_errors.field("email")} required placeholder="colleague@example.com"/><FieldError of=invite_errors field="email"/></label>
            <fieldset class="roles"><legend>"Roles"</legend><RoleBoxes checked=vec![OrgRole::Member]/></fieldset>
            <button type="submit" disabled=move || invite.pending().get()>"Send invitation"</button>
        </ActionForm>
        {move || matches!(invite.value().get(), Some(Ok(()))).then(|| view! {
            <p class="notice" role="status">"Invitation sent. It is valid for 7 days."</p>
        })}
        {move || remove.value().get().and_then(Result::ok).map(|ended| view! {
            <p class="notice" role="status">{ended_notice("Member removed", &ended)}</p>
        })}
        {move || set_roles.value().get().and_then(Result::ok).map(|ended| view! {
            <p class="notice" role="status">{ended_notice("Roles saved", &ended)}</p>
        })}
        <FormError of=invite_errors/>
        <FormError of=set_roles/>
        <FormError of=remove/>
        <FormError of=resend/>
        <FormError of=revoke/>
        <Done value=revoke.value() text="Invitation revoked: its link no longer works."/>
        <FilterForm action="/admin/members">
            <label>"Search members" <input type="search" name="q" placeholder="name or email" prop:value=move || param("q")/></label>
            <label>"Role"
                <select name="role">
                    <option value="" selected=move || param("role").is_empty()>"Any"</option>
                    {OrgRole::ALL.into_iter().map(|role| view! {
                        <option value=role.as_str() selected=move || param("role") == role.as_str()>{role.label()}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Status"
                <select name="status">
                    {[("", "Any"), ("active", "Active"), ("pending", "Pending")].into_iter().map(|(value, label)| view! {
                        <option value=value selected=move || status() == value>{label}</option>
                    }).collect_view()}
                </select>
            </label>
            <button type="submit">"Filter"</button>
        </FilterForm>
        <Show when=move || status() != "pending">
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                list.await.map(|list| {
                    let previous = (list.page > 1).then(|| link(list.page - 1));
                    let next = list.has_next().then(|| link(list.page + 1));
                    let shown = format!(
                        "{} member{}{}",
                        list.total,
                        if list.total == 1 { "" } else { "s" },
                        if list.total > list.page_size { format!(", page {} of {}", list.page, (list.total + list.page_size - 1) / list.page_size) } else { String::new() }
                    );
                    view! {
                        <p class="muted" data-testid="members-total">{shown}</p>
                        <table class="table">
                            <thead><tr><th>"Name"</th><th>"Email"</th><th>"Roles"</th><th>"Status"</th><th>"Last login"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {list.items.into_iter().map(|m| view! { <MemberRow member=m set_roles remove/> }).collect_view()}
                            </tbody>
                        </table>
                        <p class="pager">
                            {previous.map(|href| view! { <A href=href>"← Previous"</A> })}
                            {next.map(|href| view! { <A href=href>"Next →"</A> })}
                        </p>
                    }
                })
            })}
        </Transition>
        </Show>
        <Show when=move || status() != "active">
        <h2>"Invitations"</h2>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                invitations.await.map(|invitations| {
                    let first = invites_after().is_none();
                    if invitations.items.is_empty() && first {
                        return view! { <p class="muted">"No pending invitations."</p> }.into_any();
                    }
                    view! {
                        <table class="table">
                            <thead><tr><th>"Email"</th><th>"Roles"</th><th>"Status"</th><th>"Invited by"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {invitations.items.into_iter().map(|i| view! { <InvitationRow invitation=i resend revoke/> }).collect_view()}
                            </tbody>
                        </table>
                        <p class="pager">
                            {(!first).then(|| view! { <A href="/admin/members?status=pending">"← First invitations"</A> })}
                            {invitations.next.map(|next| view! {
                                <A href=format!("/admin/members?status=pending&invites={next}") attr:data-testid="more-invitations">"More invitations →"</A>
                            })}
                        </p>
                    }.into_any()
                })
            })}
        </Transition>
        </Show>
    }
}

/// "Member removed. 2 API keys revoked." after a change that took access away.
fn ended_notice(done: &str, ended: &AccessEnded) -> String {
    match ended.summary() {
        summary if summary.is_empty() => format!("{done}."),
        summary => format!("{done}. {summary}."),
    }
}

#[component]
fn MemberRow(
    member: Member,
    set_roles: ServerAction<SetMemberRoles>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let (roles_id, remove_id) = (member.user_id.to_string(), member.user_id.to_string());
    let who = member.email.clone();
    view! {
        <tr data-testid="member-row">
            <td>{member.name}</td>
            <td>{member.email}</td>
            <td>
                <ActionForm action=set_roles attr:class="roles-form">
                    <input type="hidden" name="user_id" value=roles_id/>
                    <RoleBoxes checked=member.roles/>
                    <button type="submit" class="link" disabled=move || set_roles.pending().get()>"Save roles"</button>
                </ActionForm>
            </td>
            <td>"Active"</td>
            <td>{member.last_login_at.map(Timestamp::display).unwrap_or_else(|| "—".into())}</td>
            <td>
                <ActionForm action=remove>
                    <input type="hidden" name="user_id" value=remove_id/>
                    <ConfirmButton label="Remove" subject=who.clone()
                        question=format!("Remove {who} from the Organization?")
                        consequence="They lose access to every workspace at once, and the API keys they made for themselves stop working."
                        confirm="Remove member"/>
                </ActionForm>
            </td>
        </tr>
    }
}

#[component]
fn InvitationRow(
    invitation: Invitation,
    resend: ServerAction<ResendInvitation>,
    revoke: ServerAction<RevokeInvitation>,
) -> impl IntoView {
    let (resend_id, revoke_id) = (invitation.id.to_string(), invitation.id.to_string());
    let email = invitation.email.clone();
    let roles = invitation.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join(", ");
    view! {
        <tr data-testid="invitation-row">
            <td>{invitation.email}</td>
            <td>{roles}</td>
            <td>{if invitation.expired { "Expired".to_string() } else { format!("Pending until {}", invitation.expires_at.display()) }}</td>
            <td>{invitation.invited_by}</td>
            <td>
                <ActionForm action=resend>
                    <input type="hidden" name="invitation_id" value=resend_id/>
                    <button type="submit" class="link" disabled=move || resend.pending().get()>"Resend"</button>
                </ActionForm>
                <ActionForm action=revoke>
                    <input type="hidden" name="invitation_id" value=revoke_id/>
                    <ConfirmButton label="Revoke" subject=format!("the invitation of {email}")
                        question=format!("Revoke the invitation of {email}?")
                        consequence="The link sent to them stops working. You can invite them again later."
                        confirm="Revoke invitation"/>
                </ActionForm>
            </td>
        </tr>
    }
}

#[component]
pub(super) fn SettingsSection() -> impl IntoView {
    let save = ServerAction::<SetAllowedDomains>::new();
    let rename = ServerAction::<RenameOrganization>::new();
    let rename_errors = FormErrors::new(rename, "rename-organization", &["name"]);
    let domains_errors = FormErrors::new(save, "allowed-domains", &["domains"]);
    let domains = Resource::new(move || save.version().get(), |_| members::get_allowed_domains());
    let AdminOverview { org, .. } = expect_context::<AdminOverview>();
    view! {
        <h2>"Organization"</h2>
        <ActionForm action=rename attr:class="inline-form">
            <label>"Organization name" <input type="text" {..rename_errors.field("name")} required maxlength="100" value=org.name/><FieldError of=rename_errors field="name"/></label>
            <button type="submit" disabled=move || rename.pending().get()>"Rename"</button>
        </ActionForm>
        <FormError of=rename_errors/>
        <KeyLifetime/>
        <h2>"Allowed email domains"</h2>
        <p class="hint">"Invitations can only go to addresses in these domains. Leave empty to allow any domain."</p>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                domains.await.map(|domains| view! {
                    <ActionForm action=save>
                        <label>"Domains (one per line)"
                            <textarea {..domains_errors.field("domains")} rows="4">{domains.join("\n")}</textarea><FieldError of=domains_errors field="domains"/>
                        </label>
                        <button type="submit" disabled=move || save.pending().get()>"Save domains"</button>
                    </ActionForm>
                })
            })}
        </Transition>
        {move || matches!(save.value().get(), Some(Ok(()))).then(|| view! { <p class="notice" role="status">"Saved."</p> })}
        <FormError of=domains_errors/>
        <super::domains::VerifiedDomains/>
        <super::sso::SingleSignOn/>
        <super::scim::Provisioning/>
        <AdminKeysOfOrg/>
    }
}

/// How long workspace API keys may live: new keys are clamped to it.
#[component]
fn KeyLifetime() -> impl IntoView {
    let save = ServerAction::<SetKeyPolicy>::new();
    let policy_errors = FormErrors::new(save, "key-policy", &["max_days"]);
    let policy = Resource::new(move || save.version().get(), |_| members::get_key_policy());
    view! {
        <h2>"API key lifetime"</h2>
        <p class="hint">"The longest a workspace API key may live. New keys without an expiry, or beyond it, expire on the last day allowed; existing keys are kept and marked Beyond policy. Leave empty for no maximum."</p>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                policy.await.map(|policy| view! {
                    <ActionForm action=save attr:class="inline-form">
                        <label>"Maximum lifetime (days)"
                            <input type="number" {..policy_errors.field("max_days")} min="1" max="3650" value=policy.org_max_days.map(|d| d.to_string()).unwrap_or_default()/><FieldError of=policy_errors field="max_days"/>
                        </label>
                        <button type="submit" disabled=move || save.pending().get()>"Save lifetime"</button>
                    </ActionForm>
                })
            })}
        </Transition>
        {move || matches!(save.value().get(), Some(Ok(()))).then(|| view! { <p class="notice" role="status">"Key lifetime saved."</p> })}
        <FormError of=policy_errors/>
    }
}

/// The Admin API keys that administer this Organization (made in the
/// Backoffice): who can act on it from outside, and the way to cut one off.
#[component]
fn AdminKeysOfOrg() -> impl IntoView {
    let revoke = ServerAction::<RevokeOrgAdminKey>::new();
    let keys = Resource::new(move || revoke.version().get(), |_| members::list_org_admin_keys());
    view! {
        <h2>"Admin API keys"</h2>
        <p class="hint">"Keys made in the Backoffice that administer this Organization through the Admin API."</p>
        <Done value=revoke.value() text="Key revoked: it no longer works."/>
        <FormError of=revoke/>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                keys.await.map(|keys| if keys.is_empty() {
                    view! { <p class="muted">"No Admin API key administers this Organization."</p> }.into_any()
                } else {
                    view! {
                        <table class="table">
                            <thead><tr><th>"Name"</th><th>"Key"</th><th>"Created"</th><th>"Last used"</th><th>"Status"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {keys.into_iter().map(|k| {
    let name = k.name.clone();
    view! {
                                    <tr data-testid="org-admin-key-row">
                                        <td>{k.name}</td>
                                        <td><code>{k.masked_key}</code></td>
                                        <td>{k.created_at.display()}</td>
                                        <td>{k.last_used_at.map(Timestamp::display).unwrap_or_else(|| "Never".into())}</td>
                                        <td>{if k.revoked_at.is_some() { "Revoked" } else if k.creator_left { "Active, creator left" } else { "Active" }}</td>
                                        <td>
                                            {k.revoked_at.is_none().then(|| view! {
                                                <ActionForm action=revoke>
                                                    <input type="hidden" name="key_id" value=k.id.to_string()/>
                                                    <ConfirmButton label="Revoke" subject=name.clone()
                                                        question=format!("Revoke {name}?")
                                                        consequence="The Admin API key stops working at once: calls with it are refused (401). This cannot be undone."
                                                        confirm="Revoke key"/>
                                                </ActionForm>
                                            })}
                                        </td>
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                })
            })}
        </Transition>
    }
}
