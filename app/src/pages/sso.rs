//! The Settings section's single sign-on: the Organization's identity
//! provider (OpenID Connect or SAML 2.0, one on at a time), and whether its
//! members must use it.

use leptos::prelude::*;

use super::{loading, FieldError, FormError, FormErrors};
use crate::{
    api::sso::{self, AllowPasswords, RemoveOidc, RemoveSaml, RequireSso, SaveOidc, SaveSaml},
    model::{OidcPanel, OrgRole, SamlPanel, SsoEnforcement},
};

#[component]
pub(super) fn SingleSignOn() -> impl IntoView {
    let save_oidc = ServerAction::<SaveOidc>::new();
    let remove_oidc = ServerAction::<RemoveOidc>::new();
    let save_saml = ServerAction::<SaveSaml>::new();
    let remove_saml = ServerAction::<RemoveSaml>::new();
    let providers_changed = Signal::derive(move || {
        save_oidc.version().get()
            + remove_oidc.version().get()
            + save_saml.version().get()
            + remove_saml.version().get()
    });
    view! {
        <OidcProvider save=save_oidc remove=remove_oidc/>
        <SamlProvider save=save_saml remove=remove_saml/>
        <SsoRequirement providers_changed/>
    }
}

#[component]
fn OidcProvider(save: ServerAction<SaveOidc>, remove: ServerAction<RemoveOidc>) -> impl IntoView {
    let errors = FormErrors::new(save, "oidc", &["issuer", "client_id", "client_secret", "groups_claim"]);
    let panel = Resource::new(move || (save.version().get(), remove.version().get()), |_| sso::get_oidc());
    view! {
        <h2>"Single sign-on (OpenID Connect)"</h2>
        <p class="hint">
            "People whose email is in one of your verified domains log in through your identity provider "
            "(\u{201c}Continue with SSO\u{201d} on the log-in page). Their first log-in makes them members "
            "with the default role. One provider is on at a time: OpenID Connect or SAML 2.0 (below)."
        </p>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                panel.await.map(|panel| view! { <OidcForm panel save remove errors/> })
            })}
        </Transition>
        {move || matches!(save.value().get(), Some(Ok(_))).then(|| view! { <p class="notice" role="status">"Single sign-on saved."</p> })}
        <FormError of=errors/>
        <FormError of=remove/>
    }
}

#[component]
fn SamlProvider(save: ServerAction<SaveSaml>, remove: ServerAction<RemoveSaml>) -> impl IntoView {
    let errors = FormErrors::new(
        save,
        "saml",
        &["metadata_xml", "idp_entity_id", "sso_url", "certificate", "email_attribute", "groups_attribute"],
    );
    let panel = Resource::new(move || (save.version().get(), remove.version().get()), |_| sso::get_saml());
    view! {
        <h2>"Single sign-on (SAML 2.0)"</h2>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                panel.await.map(|panel| view! { <SamlForm panel save remove errors/> })
            })}
        </Transition>
        {move || matches!(save.value().get(), Some(Ok(_))).then(|| view! { <p class="notice" role="status">"SAML provider saved."</p> })}
        <FormError of=errors/>
        <FormError of=remove/>
    }
}

#[component]
fn SamlForm(
    panel: SamlPanel,
    save: ServerAction<SaveSaml>,
    errors: FormErrors,
    remove: ServerAction<RemoveSaml>,
) -> impl IntoView {
    let SamlPanel { settings, sp_entity_id, acs_url, metadata_url } = panel;
    let saved = settings.is_some();
    let settings = settings.unwrap_or_else(|| crate::model::SamlSettings {
        idp_entity_id: String::new(),
        sso_url: String::new(),
        certificates: Vec::new(),
        default_role: Some(OrgRole::Member),
        email_attribute: String::new(),
        groups_attribute: String::new(),
        idp_initiated: false,
        enabled: true,
        updated_at: Default::default(),
    });
    let certificate_hint = if saved {
        "Leave empty to keep the certificate(s) above; paste to replace them (several PEM blocks while the IdP rotates)."
    } else {
        "The IdP's signing certificate, PEM (several blocks while it rotates)."
    };
    view! {
        <p>"Register Chancery with your IdP as a SAML application: import "
            <a href=metadata_url.clone() download="chancery-sp-metadata.xml" data-testid="saml-sp-metadata">"Chancery's SP metadata"</a>
            ", or give it these:"</p>
        <dl class="facts">
            <dt>"Entity ID (audience)"</dt><dd><code data-testid="saml-sp-entity-id">{sp_entity_id}</code></dd>
            <dt>"ACS URL (HTTP-POST)"</dt><dd><code data-testid="saml-acs-url">{acs_url}</code></dd>
            <dt>"NameID"</dt><dd>"the person's email address (or name an email attribute below)"</dd>
        </dl>
        {(!settings.certificates.is_empty()).then(|| view! {
            <table class="table" data-testid="saml-certificates">
                <caption>"Signing certificates trusted"</caption>
                <thead><tr><th>"Subject"</th><th>"Expires"</th><th>"SHA-256 fingerprint"</th></tr></thead>
                <tbody>
                    {settings.certificates.iter().map(|certificate| view! {
                        <tr><td>{certificate.subject.clone()}</td><td>{certificate.not_after.clone()}</td>
                            <td><code class="fingerprint">{certificate.sha256.clone()}</code></td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        })}
        <ActionForm action=save>
            <label>"IdP metadata XML"
                <textarea {..errors.field("metadata_xml")} rows="4" placeholder="<md:EntityDescriptor entityID=…>"></textarea><FieldError of=errors field="metadata_xml"/>
                <span class="hint">"Paste your IdP's metadata, or leave empty and fill in the three fields below."</span>
            </label>
            <label>"IdP entity ID (Issuer)" <input {..errors.field("idp_entity_id")} value=settings.idp_entity_id placeholder="https://idp.example.com/saml"/><FieldError of=errors field="idp_entity_id"/></label>
            <label>"IdP SSO URL (HTTP-Redirect)" <input type="url" {..errors.field("sso_url")} value=settings.sso_url placeholder="https://idp.example.com/sso"/><FieldError of=errors field="sso_url"/></label>
            <label>"IdP signing certificate"
                <textarea {..errors.field("certificate")} rows="4" placeholder="-----BEGIN CERTIFICATE-----"></textarea><FieldError of=errors field="certificate"/>
                <span class="hint">{certificate_hint}</span>
            </label>
            <DefaultRole selected=settings.default_role/>
            <label>"Email attribute (optional)"
                <input {..errors.field("email_attribute")} value=settings.email_attribute placeholder="email"/><FieldError of=errors field="email_attribute"/>
                <span class="hint">"Empty: the NameID is the email."</span>
            </label>
            <label>"Groups attribute (optional)"
                <input {..errors.field("groups_attribute")} value=settings.groups_attribute placeholder="groups"/><FieldError of=errors field="groups_attribute"/>
                <span class="hint">"The attribute listing a person's groups: at each log-in they are in exactly your groups of those names (made in Groups)."</span>
            </label>
            <label class="check"><input type="checkbox" name="idp_initiated" checked=settings.idp_initiated/> "Allow log-ins started from the IdP's dashboard (IdP-initiated)"</label>
            <label class="check"><input type="checkbox" name="enabled" checked=settings.enabled/> "Log-in through this IdP is on"</label>
            <button type="submit" disabled=move || save.pending().get()>"Save SAML provider"</button>
        </ActionForm>
        {saved.then(|| view! {
            <ActionForm action=remove>
                <button type="submit" class="danger-button" disabled=move || remove.pending().get()>"Remove SAML provider"</button>
            </ActionForm>
        })}
    }
}

/// Whether members in verified domains must log in through the provider.
#[component]
fn SsoRequirement(providers_changed: Signal<usize>) -> impl IntoView {
    let require = ServerAction::<RequireSso>::new();
    let allow = ServerAction::<AllowPasswords>::new();
    let enforcement = Resource::new(
        move || (providers_changed.get(), require.version().get(), allow.version().get()),
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
        <FormError of=require/>
        <FormError of=allow/>
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
    errors: FormErrors,
    remove: ServerAction<RemoveOidc>,
) -> impl IntoView {
    let OidcPanel { settings, redirect_uri } = panel;
    let saved = settings.is_some();
    let settings = settings.unwrap_or_else(|| crate::model::OidcSettings {
        issuer: String::new(),
        client_id: String::new(),
        default_role: Some(OrgRole::Member),
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
            <label>"Issuer URL" <input type="url" {..errors.field("issuer")} value=settings.issuer placeholder="https://login.example.com" required/><FieldError of=errors field="issuer"/></label>
            <label>"Client ID" <input {..errors.field("client_id")} value=settings.client_id autocomplete="off" required/><FieldError of=errors field="client_id"/></label>
            <label>"Client secret"
                <input type="password" {..errors.field("client_secret")} autocomplete="new-password" required=!saved/><FieldError of=errors field="client_secret"/>
                <span class="hint">{secret_hint}</span>
            </label>
            <DefaultRole selected=settings.default_role/>
            <label>"Groups claim (optional)"
                <input {..errors.field("groups_claim")} value=settings.groups_claim placeholder="groups"/><FieldError of=errors field="groups_claim"/>
                <span class="hint">"The ID token claim listing a person's groups: at each log-in they are in exactly your groups of those names (made in Groups)."</span>
            </label>
            <label class="check"><input type="checkbox" name="enabled" checked=settings.enabled/> "Log-in through this provider is on"</label>
            <button type="submit" disabled=move || save.pending().get()>"Save single sign-on"</button>
        </ActionForm>
        {saved.then(|| view! {
            <ActionForm action=remove>
                <button type="submit" class="danger-button" disabled=move || remove.pending().get()>"Remove single sign-on"</button>
            </ActionForm>
        })}
    }
}

/// The role people get when their first single sign-on makes them members
/// (never Admin), or none: then only people already members get in.
#[component]
fn DefaultRole(selected: Option<OrgRole>) -> impl IntoView {
    view! {
        <label>"New members at first log-in"
            <select name="default_role">
                {[OrgRole::Member, OrgRole::Billing].into_iter().map(|role| view! {
                    <option value=role.as_str() selected=Some(role) == selected>{format!("Join as {}", role.label())}</option>
                }).collect_view()}
                <option value="none" selected=selected.is_none()>"Nobody joins at log-in: invite people first"</option>
            </select>
        </label>
    }
}
