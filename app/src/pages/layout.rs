//! The frame of the signed-in areas: a top bar and a side navigation.

use leptos::{prelude::*, server_fn::ServerFn};
use leptos_router::components::A;

use super::SecretFromFormPost;
use crate::{
    api::{LogOut, OpenOrganization},
    model::OrgSummary,
};

/// A link of the side navigation: `(href, label)`.
pub(crate) type NavItem = (&'static str, &'static str);

/// A heading of the side navigation and the links under it.
pub(crate) type NavGroup = (&'static str, Vec<NavItem>);

#[component]
pub(crate) fn Frame(
    /// "Chancery" or "Chancery Backoffice".
    brand: &'static str,
    /// The organization or Enterprise Account being administered.
    context: String,
    context_testid: &'static str,
    /// Who is signed in, as the top bar shows them.
    who: String,
    nav: Vec<NavGroup>,
    /// The `href` of the current section.
    active: &'static str,
    /// The page's heading. `None` on a detail page, which names itself (a
    /// workspace, a group) under a link back to its section's list.
    title: Option<String>,
    /// A link to the other area (Admin Panel ↔ Backoffice).
    elsewhere: Option<NavItem>,
    /// The other Organizations the person may open (the switcher shows when there are any).
    #[prop(optional)]
    switch_to: Vec<OrgSummary>,
    children: Children,
) -> impl IntoView {
    let log_out = ServerAction::<LogOut>::new();
    let back = nav.iter().flat_map(|(_, items)| items).find(|(href, _)| *href == active).copied();
    view! {
        <header class="topbar">
            <span class="brand">{brand}</span>
            <span class="org-name" data-testid=context_testid>{context}</span>
            {(!switch_to.is_empty()).then(|| view! { <Switcher organizations=switch_to/> })}
            <span class="spacer"></span>
            {elsewhere.map(|(href, label)| view! { <a href=href>{label}</a> })}
            <A href="/account" attr:class="who" attr:title="Your account">{who}</A>
            <ActionForm action=log_out><button type="submit" class="link" disabled=move || log_out.pending().get()>"Log out"</button></ActionForm>
        </header>
        <div class="with-sidebar">
            <nav class="sidebar" aria-label=brand>
                {nav.into_iter().enumerate().map(|(i, (heading, items))| {
                    let id = format!("nav-group-{i}");
                    let labelled_by = id.clone();
                    view! {
                        <div class="nav-group" role="group" aria-labelledby=labelled_by>
                            <span class="nav-heading" id=id>{heading}</span>
                            {items.into_iter().map(|(href, label)| view! {
                                <A href=href attr:class=if href == active { "active" } else { "" }>{label}</A>
                            }).collect_view()}
                        </div>
                    }
                }).collect_view()}
            </nav>
            <main class="panel">
                {match title {
                    Some(title) => view! { <h1>{title}</h1> }.into_any(),
                    None => back.map(|(href, label)| view! {
                        <A href=href attr:class="back" attr:data-testid="back-to-list">{format!("← All {}", label.to_lowercase())}</A>
                    }).into_any(),
                }}
                <SecretFromFormPost/>
                {children()}
            </main>
        </div>
    }
}

/// Opens another of the person's Organizations. A plain form: switching
/// loads the whole Admin Panel anew, with or without JavaScript.
#[component]
fn Switcher(organizations: Vec<OrgSummary>) -> impl IntoView {
    view! {
        <form method="post" action=OpenOrganization::PATH class="switcher">
            <label>
                <span class="visually-hidden">"Switch to another organization"</span>
                <select name="org_id" data-testid="org-switcher">
                    {organizations.into_iter().map(|org| view! { <option value=org.id.to_string()>{org.name}</option> }).collect_view()}
                </select>
            </label>
            <button type="submit" class="link">"Switch"</button>
        </form>
    }
}
