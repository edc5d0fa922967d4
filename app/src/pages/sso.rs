//! The Settings section's single sign-on: the Organization's OpenID Connect
//! provider, and whether its members must use it.

use leptos::prelude::*;

use super::{loading, FormError};
use crate::{
    api::sso::{self, AllowPasswords, RemoveOidc, RequireSso, SaveOidc},
    model::{OidcPanel, OrgRole, SsoEnforcement},
};

#[component]
pub(super) fn OidcProvider() -> impl IntoView {
    let save = ServerAction::<SaveOidc>::new();
    let remove = ServerAction::<RemoveOidc>::new();
    let panel = Resource::new(move || (save.version().get(), remove.version().get()), |_| sso::get_oidc());
    view! {
        <h2>"Single sign-on (OpenID Connect)"</h2>
        <p class="hint">
            "People whose email is in one of your verified domains log in through your identity provider "
            "(\u{201c}Continue with SSO\u{201d} on the log-in page). Their first log-in makes them members "
            "with the default role."
        </p>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                panel.await.map(|panel| view! { <OidcForm panel save remove/> })
            })}
        </Transition>
        {move || matches!(save.value().get(), Some(Ok(_))).then(|| view! { <p class="notice" role="status">"Single sign-on saved."</p> })}
        <FormError value=save.value()/>
        <FormError value=remove.value()/>
        <SsoRequirement provider_saved=save/>
    }
}

/// Whether members in verified domains must log in through the provider.
#[component]
fn SsoRequirement(provider_saved: ServerAction<SaveOidc>) -> impl IntoView {
    let require = ServerAction::<RequireSso>::new();
    let allow = ServerAction::<AllowPasswords>::new();
    let enforcement = Resource::new(
        move || (provider_saved.version().get(), require.version().get(), allow.version().get()),
        |_| sso::get_sso_enforcement(),
    );
    view! {
        <h2>"Require single sign-on"</h2>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                enforcement.await.map(|enforcement| view! { <SsoRequirementForm enforcement require allow/> })
            })}
        </Transition>
        {move || matches!(require.value().get(), Some(Ok(_))).then(|| view! {
            <p class="notice" role="status">"Single sign-on is now required. Password sessions of the members it covers have ended."</p>
        })}
        {move || matches!(allow.value().get(), Some(Ok(_))).then(|| view! {
            <p class="notice" role="status">"Members may log in with passwords again."</p>
        })}
        <FormError value=require.value()/>
        <FormError value=allow.value()/>
    }
}

#[component]
fn SsoRequirementForm(
    enforcement: SsoEnforcement,
    require: ServerAction<RequireSso>,
    allow: ServerAction<AllowPasswords>,
) -> impl IntoView {
    let SsoEnforcement { org_id, required_since, verified_domains, provider_enabled, members_covered } =
        enforcement;
    let domains = if verified_domains.is_empty() {
        "no verified domain yet".to_string()
    } else {
        verified_domains.join(", ")
    };
    let covered = format!("{members_covered} member(s) with an email in {domains}");
    match required_since {
        Some(since) => view! {
            <p data-testid="sso-requirement">
                {format!("Required since {}: {covered} log in only through your identity provider; their passwords do not open Chancery.", since.display())}
            </p>
            <p class="hint">"Should your provider become unreachable, the operator of this Chancery can lift it: "
                <code>{format!("chancery sso allow-passwords --org {org_id}")}</code></p>
            <ActionForm action=allow>
                <button type="submit" disabled=move || allow.pending().get()>"Stop requiring single sign-on"</button>
            </ActionForm>
        }.into_any(),
        None => view! {
            <p data-testid="sso-requirement">
                {format!("Not required: {covered} may also log in with a password. Once required, they log in only through your identity provider, and their password sessions end at once.")}
            </p>
            {(!provider_enabled).then(|| view! { <p class="hint">"Needs an identity provider that is on (above)."</p> })}
            <ActionForm action=require>
                <button type="submit" disabled=move || require.pending().get()>"Require single sign-on"</button>
            </ActionForm>
        }.into_any(),
    }
}

#[component]
fn OidcForm(
    panel: OidcPanel,
    save: ServerAction<SaveOidc>,
    remove: ServerAction<RemoveOidc>,
) -> impl IntoView {
    let OidcPanel { settings, redirect_uri } = panel;
    let saved = settings.is_some();
    let settings = settings.unwrap_or_else(|| crate::model::OidcSettings {
        issuer: String::new(),
        client_id: String::new(),
        default_role: OrgRole::Member,
        groups_claim: String::new(),
        enabled: true,
        updated_at: Default::default(),
    });
    let secret_hint = if saved {
        "Saved; never shown again. Leave empty to keep it."
    } else {
        "Shown once by your provider."
    };
    view! {
        <p>"Register Chancery with your provider as a web application with this redirect URI: "
            <code data-testid="oidc-redirect-uri">{redirect_uri}</code></p>
        <ActionForm action=save>
            <label>"Issuer URL" <input type="url" name="issuer" value=settings.issuer placeholder="https://login.example.com" required/></label>
            <label>"Client ID" <input name="client_id" value=settings.client_id autocomplete="off" required/></label>
            <label>"Client secret"
                <input type="password" name="client_secret" autocomplete="new-password" required=!saved/>
                <span class="hint">{secret_hint}</span>
            </label>
            <label>"Default role of new members"
                <select name="default_role">
                    {[OrgRole::Member, OrgRole::Billing].into_iter().map(|role| view! {
                        <option value=role.as_str() selected=role == settings.default_role>{role.label()}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Groups claim (optional)"
                <input name="groups_claim" value=settings.groups_claim placeholder="groups"/>
                <span class="hint">"The ID token claim listing a person's groups: at each log-in they are in exactly your groups of those names (made in Groups)."</span>
            </label>
            <label class="check"><input type="checkbox" name="enabled" checked=settings.enabled/> "Log-in through this provider is on"</label>
            <button type="submit" disabled=move || save.pending().get()>"Save single sign-on"</button>
        </ActionForm>
        {saved.then(|| view! {
            <ActionForm action=remove>
                <button type="submit" class="danger-button">"Remove single sign-on"</button>
            </ActionForm>
        })}
    }
}
