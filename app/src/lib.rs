//! Chancery's application: the pages and server functions shared by the server
//! (SSR) and the browser (hydration), plus the server-only domain in [`server`].

// Leptos views are deeply nested types; the release wasm build needs more room.
#![recursion_limit = "256"]

pub mod api;
pub mod audit_events;
pub mod error;
pub mod ids;
pub mod model;
pub mod money;
mod pages;
pub mod payment;
pub mod time;
pub mod validate;

#[cfg(feature = "ssr")]
pub mod server;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Redirect, Route, Router, Routes},
    path, SsrMode,
};

pub use error::AppError;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    server::request::set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options=options.clone()/>
                <HashedStylesheet options id="leptos"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The stylesheet's `<link>` (its name hashed by the release build), for the
/// pages the server writes without Leptos (the Admin API reference).
#[cfg(feature = "ssr")]
pub fn stylesheet_link(options: LeptosOptions) -> String {
    view! { <HashedStylesheet options id="leptos"/> }.to_html()
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: this marks the page as interactive, which
    // browser tests wait for before they click.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Title formatter=|page: String| if page.is_empty() { "Chancery".to_string() } else { format!("{page} · Chancery") }/>
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=path!("/") view=pages::Home ssr=SsrMode::Async/>
                <Route path=path!("/signup") view=pages::SignUpPage/>
                <Route path=path!("/login") view=pages::LogInPage/>
                <Route path=path!("/login/sso") view=pages::SsoLogInPage/>
                <Route path=path!("/forgot-password") view=pages::account::ForgotPasswordPage/>
                <Route path=path!("/reset-password/:token") view=pages::account::ResetPasswordPage/>
                <Route path=path!("/account") view=pages::account::AccountPage ssr=SsrMode::Async/>
                <Route path=path!("/verify-email/:token") view=pages::account::VerifyEmailPage/>
                <Route path=path!("/onboarding") view=pages::OnboardingPage ssr=SsrMode::Async/>
                <Route path=path!("/admin") view=pages::admin::AdminWorkspacesPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/workspaces/:id") view=pages::admin::AdminWorkspacePage ssr=SsrMode::Async/>
                <Route path=path!("/admin/members") view=pages::admin::AdminMembersPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/groups") view=pages::admin::AdminGroupsPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/groups/:id") view=pages::admin::AdminGroupPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/audit-log") view=pages::admin::AdminAuditLogPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/billing") view=pages::admin::AdminBillingPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/usage") view=pages::admin::AdminUsagePage ssr=SsrMode::Async/>
                <Route path=path!("/admin/settings") view=pages::admin::AdminSettingsPage ssr=SsrMode::Async/>
                <Route path=path!("/invite/:token") view=pages::invitation::InvitationPage ssr=SsrMode::Async/>
                <Route path=path!("/backoffice") view=|| view! { <Redirect path="/backoffice/members"/> }/>
                <Route path=path!("/backoffice/members") view=pages::backoffice::BackofficeMembersPage ssr=SsrMode::Async/>
                <Route path=path!("/backoffice/organizations") view=pages::backoffice::BackofficeOrganizationsPage ssr=SsrMode::Async/>
                <Route path=path!("/backoffice/api-keys") view=pages::backoffice::BackofficeApiKeysPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
