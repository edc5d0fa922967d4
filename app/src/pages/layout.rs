//! The frame of the signed-in areas: a top bar and a side navigation.

use leptos::prelude::*;
use leptos_router::components::A;

use super::SecretFromFormPost;
use crate::api::LogOut;

/// A link of the side navigation: `(href, label)`.
pub(crate) type NavItem = (&'static str, &'static str);

#[component]
pub(crate) fn Frame(
    /// "Chancery" or "Chancery Backoffice".
    brand: &'static str,
    /// The organization or Enterprise Account being administered.
    context: String,
    context_testid: &'static str,
    /// Who is signed in, as the top bar shows them.
    who: String,
    nav: Vec<NavItem>,
    /// The `href` of the current section.
    active: &'static str,
    title: String,
    /// A link to the other area (Admin Panel ↔ Backoffice).
    elsewhere: Option<NavItem>,
    children: Children,
) -> impl IntoView {
    let log_out = ServerAction::<LogOut>::new();
    view! {
        <header class="topbar">
            <span class="brand">{brand}</span>
            <span class="org-name" data-testid=context_testid>{context}</span>
            <span class="spacer"></span>
            {elsewhere.map(|(href, label)| view! { <a href=href>{label}</a> })}
            <A href="/account" attr:class="who" attr:title="Your account">{who}</A>
            <ActionForm action=log_out><button type="submit" class="link" disabled=move || log_out.pending().get()>"Log out"</button></ActionForm>
        </header>
        <div class="with-sidebar">
            <nav class="sidebar" aria-label=brand>
                {nav.into_iter().map(|(href, label)| view! {
                    <A href=href attr:class=if href == active { "active" } else { "" }>{label}</A>
                }).collect_view()}
            </nav>
            <main class="panel">
                <h1>{title}</h1>
                <SecretFromFormPost/>
                {children()}
            </main>
        </div>
    }
}
