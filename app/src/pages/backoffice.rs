//! The Backoffice (`/backoffice/...`): Enterprise Account members, linked
//! Organizations and Admin API keys, for Enterprise Account admins only.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Redirect, A};

use super::{
    layout::Frame, loading, AuthCard, ConfirmButton, Done, FieldError, FormError, FormErrors, NewKey,
};
use crate::{
    api::{
        backoffice::{
            self, AcceptEnterpriseInvitation, AddEnterpriseMember, CreateAdminKey, CreateEnterpriseOrg,
            PromoteToAdmin, RemoveEnterpriseMember, RevokeAdminKey,
        },
        OpenOrganization,
    },
    error::AppError,
    model::BackofficeHome,
    time::Timestamp,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Members,
    Organizations,
    ApiKeys,
}

impl Section {
    const ALL: [Section; 3] = [Section::Members, Section::Organizations, Section::ApiKeys];

    fn href(self) -> &'static str {
        match self {
            Self::Members => "/backoffice/members",
            Self::Organizations => "/backoffice/organizations",
            Self::ApiKeys => "/backoffice/api-keys",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Members => "Enterprise Account Members",
            Self::Organizations => "Organizations",
            Self::ApiKeys => "API Keys",
        }
    }
}

#[component]
pub fn BackofficeMembersPage() -> impl IntoView {
    view! { <BackofficeShell section=Section::Members><Members/></BackofficeShell> }
}

#[component]
pub fn BackofficeOrganizationsPage() -> impl IntoView {
    view! { <BackofficeShell section=Section::Organizations><Organizations/></BackofficeShell> }
}

#[component]
pub fn BackofficeApiKeysPage() -> impl IntoView {
    view! { <BackofficeShell section=Section::ApiKeys><ApiKeys/></BackofficeShell> }
}

/// Checks who is here, then frames a section with the Backoffice's navigation.
#[component]
fn BackofficeShell(section: Section, children: ChildrenFn) -> impl IntoView {
    let home = Resource::new(|| (), |_| backoffice::get_backoffice());
    let children = StoredValue::new(children);
    view! {
        <Title text=format!("{} · Backoffice", section.title())/>
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match home.await {
                    Ok(BackofficeHome { user, enterprise: Some(enterprise), .. }) => view! {
                        <Frame
                            brand="Chancery Backoffice"
                            context=enterprise.name
                            context_testid="enterprise-name"
                            who=user.name
                            nav=vec![("Enterprise Account", Section::ALL.iter().map(|s| (s.href(), s.title())).collect())]
                            active=section.href()
                            title=Some(section.title().to_string())
                            elsewhere=Some(("/admin", "Admin Panel"))
                        >
                            {children.with_value(|children| children())}
                        </Frame>
                    }.into_any(),
                    Ok(BackofficeHome { invitations, .. }) => view! { <Invitations invitations/> }.into_any(),
                    Err(AppError::Unauthenticated(_)) => view! { <Redirect path=super::log_in_and_return()/> }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// For a signed-in person in no Enterprise Account: their pending invitations, if any.
#[component]
fn Invitations(invitations: Vec<crate::model::EnterpriseSummary>) -> impl IntoView {
    let accept = ServerAction::<AcceptEnterpriseInvitation>::new();
    // Once accepted, reload so the Backoffice opens.
    Effect::new(move |_| {
        if matches!(accept.value().get(), Some(Ok(()))) {
            let _ = window().location().reload();
        }
    });
    view! {
        <AuthCard title="Backoffice">
            {if invitations.is_empty() {
                view! { <p>"You are not an admin of an Enterprise Account. Ask one of its admins to add you."</p> }.into_any()
            } else {
                invitations.into_iter().map(|e| view! {
                    <ActionForm action=accept>
                        <p>{format!("You are invited to administer the Enterprise Account {}.", e.name)}</p>
                        <input type="hidden" name="enterprise_id" value=e.id.to_string()/>
                        <button type="submit" disabled=move || accept.pending().get()>"Accept invitation"</button>
                    </ActionForm>
                }).collect_view().into_any()
            }}
            <FormError of=accept/>
            <p class="switch"><A href="/admin">"Go to the Admin Panel"</A></p>
        </AuthCard>
    }
}

fn when(t: Option<Timestamp>) -> String {
    t.map(Timestamp::display).unwrap_or_else(|| "—".into())
}

#[component]
fn Members() -> impl IntoView {
    let add = ServerAction::<AddEnterpriseMember>::new();
    let remove = ServerAction::<RemoveEnterpriseMember>::new();
    let add_errors = FormErrors::new(add, "add-ea-member", &["email"]);
    let members = Resource::new(
        move || (add.version().get(), remove.version().get()),
        |_| backoffice::list_enterprise_members(),
    );
    view! {
        <ActionForm action=add node_ref=add_errors.emptied_on_success() attr:class="inline-form">
            <label>"Add a member by email" <input type="email" {..add_errors.field("email")} required placeholder="admin@example.com"/><FieldError of=add_errors field="email"/></label>
            <button type="submit" disabled=move || add.pending().get()>"Add member"</button>
        </ActionForm>
        <p class="hint">"Only admins of an Organization linked to this Enterprise Account can be added."</p>
        <FormError of=add_errors/>
        <FormError of=remove/>
        <Done value=remove.value() text="Removed from the Enterprise Account."/>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                members.await.map(|members| view! {
                    <table class="table">
                        <thead><tr><th>"Name"</th><th>"Email"</th><th>"Account ID"</th><th>"Organizations"</th><th>"Last login"</th><th>"Status"</th><th>"Actions"</th></tr></thead>
                        <tbody>
                            {members.into_iter().map(|m| view! {
                                <tr data-testid="member-row">
                                    <td>{m.name}</td>
                                    <td>{m.email.clone()}</td>
                                    <td><code>{m.user_id.to_string()}</code></td>
                                    <td>{m.organizations.join(", ")}</td>
                                    <td>{when(m.last_login_at)}</td>
                                    <td>{if m.pending { "Invite pending" } else { "Active" }}</td>
                                    <td>
                                        <ActionForm action=remove>
                                            <input type="hidden" name="user_id" value=m.user_id.to_string()/>
                                            <ConfirmButton label="Remove" subject=m.email.clone()
                                                question=format!("Remove {} from the Enterprise Account?", m.email)
                                                consequence="They can no longer use the Backoffice. Their Organization memberships stay; Admin API keys they made keep working until revoked (marked \u{201c}Creator left\u{201d})."
                                                confirm="Remove member"/>
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
fn Organizations() -> impl IntoView {
    let create = ServerAction::<CreateEnterpriseOrg>::new();
    let promote = ServerAction::<PromoteToAdmin>::new();
    let open = ServerAction::<OpenOrganization>::new();
    let org_errors = FormErrors::new(create, "new-organization", &["name"]);
    let orgs = Resource::new(
        move || (create.version().get(), promote.version().get()),
        |_| backoffice::list_enterprise_orgs(),
    );
    view! {
        <ActionForm action=create node_ref=org_errors.emptied_on_success() attr:class="inline-form">
            <label>"New Organization" <input type="text" {..org_errors.field("name")} required placeholder="Name"/><FieldError of=org_errors field="name"/></label>
            <button type="submit" disabled=move || create.pending().get()>"Create Organization"</button>
        </ActionForm>
        <FormError of=org_errors/>
        <FormError of=promote/>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                orgs.await.map(|orgs| view! {
                    <table class="table">
                        <thead><tr><th>"Name"</th><th>"Organization ID"</th><th>"Members"</th><th>"Actions"</th></tr></thead>
                        <tbody>
                            {orgs.into_iter().map(|o| {
                                let id = o.id.to_string();
                                view! {
                                    <tr data-testid="org-row">
                                        <td>{o.name}</td>
                                        <td><code>{id.clone()}</code></td>
                                        <td>{o.member_count}</td>
                                        <td>
                                            {if o.viewer_is_admin {
                                                view! {
                                                    <ActionForm action=open>
                                                        <input type="hidden" name="org_id" value=id/>
                                                        <button type="submit" class="link" disabled=move || open.pending().get()>"Open Admin Panel"</button>
                                                    </ActionForm>
                                                }.into_any()
                                            } else {
                                                view! {
                                                    <ActionForm action=promote>
                                                        <input type="hidden" name="org_id" value=id/>
                                                        <button type="submit" class="link" disabled=move || promote.pending().get()>"Promote to admin"</button>
                                                    </ActionForm>
                                                }.into_any()
                                            }}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                })
            })}
        </Transition>
    }
}

#[component]
fn ApiKeys() -> impl IntoView {
    let create = ServerAction::<CreateAdminKey>::new();
    let revoke = ServerAction::<RevokeAdminKey>::new();
    let key_errors = FormErrors::new(create, "new-admin-key", &["name", "org_id", "expires_on"]);
    let keys = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| backoffice::list_admin_keys(),
    );
    let orgs = Resource::new(|| (), |_| backoffice::list_enterprise_orgs());
    let created = move || create.value().get().and_then(Result::ok);
    view! {
        <ActionForm action=create node_ref=key_errors.emptied_on_success() attr:class="inline-form">
            <label>"Name" <input type="text" {..key_errors.field("name")} required placeholder="CI provisioning"/><FieldError of=key_errors field="name"/></label>
            <label>
                "Organization"
                <select {..key_errors.field("org_id")} required>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            orgs.await.unwrap_or_default().into_iter().map(|o| view! {
                                <option value=o.id.to_string()>{o.name}</option>
                            }).collect_view()
                        })}
                    </Suspense>
                </select><FieldError of=key_errors field="org_id"/>
            </label>
            <label>"Expiration date (optional)" <input type="date" {..key_errors.field("expires_on")}/><FieldError of=key_errors field="expires_on"/></label>
            <button type="submit" disabled=move || create.pending().get()>"Create Key"</button>
        </ActionForm>
        <FormError of=key_errors/>
        <FormError of=revoke/>
        <Done value=revoke.value() text="Key revoked: it no longer works."/>
        {move || created().map(|created| view! { <NewKey name=created.view.name key=created.key/> })}
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                keys.await.map(|keys| view! {
                    <table class="table">
                        <thead><tr><th>"Name"</th><th>"Organization"</th><th>"Key"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th>"Actions"</th></tr></thead>
                        <tbody>
                            {keys.into_iter().map(|k| view! {
                                <tr data-testid="key-row">
                                    <td>
                                        {k.name.clone()}
                                        {k.creator_left.then(|| view! {
                                            <span class="badge warn" title="Whoever made this key is no longer a member of the Enterprise Account">"Creator left"</span>
                                        })}
                                    </td>
                                    <td>{k.org_name}</td>
                                    <td><code>{k.masked_key}</code></td>
                                    <td>{k.created_at.display()}</td>
                                    <td>{when(k.last_used_at)}</td>
                                    <td>{k.expires_at.map(Timestamp::display).unwrap_or_else(|| "Never".into())}</td>
                                    <td>
                                        {if k.revoked_at.is_some() {
                                            view! { <span class="muted">"Revoked"</span> }.into_any()
                                        } else {
                                            view! {
                                                <ActionForm action=revoke>
                                                    <input type="hidden" name="key_id" value=k.id.to_string()/>
                                                    <ConfirmButton label="Revoke" subject=k.name.clone()
                                                        question=format!("Revoke {}?", k.name)
                                                        consequence="The Admin API key stops working at once: calls with it are refused (401). This cannot be undone."
                                                        confirm="Revoke key"/>
                                                </ActionForm>
                                            }.into_any()
                                        }}
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
