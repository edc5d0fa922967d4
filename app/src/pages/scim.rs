//! The Settings section's provisioning: the SCIM address and the tokens the
//! Organization's identity provider provisions people and groups with.

use leptos::prelude::*;

use super::{loading, ConfirmButton, Done, FieldError, FormError, FormErrors, NewKey};
use crate::{
    api::scim::{self, CreateScimToken, RevokeScimToken},
    time::Timestamp,
};

#[component]
pub(super) fn Provisioning() -> impl IntoView {
    let create = ServerAction::<CreateScimToken>::new();
    let revoke = ServerAction::<RevokeScimToken>::new();
    let create_errors = FormErrors::new(create, "new-scim-token", &["name"]);
    let panel =
        Resource::new(move || (create.version().get(), revoke.version().get()), |_| scim::get_scim_panel());
    view! {
        <h2>"Provisioning (SCIM)"</h2>
        <p class="hint">
            "Your identity provider (Okta, Microsoft Entra ID...) can create members, keep their names up to date "
            "and deprovision them, and manage groups, through SCIM 2.0. Deprovisioning someone ends their sessions, "
            "revokes their API keys and takes them out of groups at once. Groups it creates are managed there: "
            "here you decide what they grant."
        </p>
        <ActionForm action=create node_ref=create_errors.emptied_on_success() attr:class="inline-form">
            <label>"Token name" <input type="text" {..create_errors.field("name")} required placeholder="Okta"/><FieldError of=create_errors field="name"/></label>
            <button type="submit" disabled=move || create.pending().get()>"Create SCIM token"</button>
        </ActionForm>
        <FormError of=create_errors/>
        <FormError of=revoke/>
        <Done value=revoke.value() text="Token revoked."/>
        {move || create.value().get().and_then(Result::ok).map(|t| view! { <NewKey name=t.view.name key=t.token/> })}
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                panel.await.map(|panel| view! {
                    <p>"SCIM base URL " <code data-testid="scim-base-url">{panel.base_url}</code>
                       " · authentication: " <code>"Authorization: Bearer <token>"</code></p>
                    {if panel.tokens.is_empty() {
                        view! { <p class="muted">"No SCIM token yet."</p> }.into_any()
                    } else {
                        view! {
                            <table class="table">
                                <thead><tr><th>"Name"</th><th>"Token"</th><th>"Created"</th><th>"Last used"</th><th>"Status"</th><th>"Actions"</th></tr></thead>
                                <tbody>
                                    {panel.tokens.into_iter().map(|t| view! {
                                        <tr data-testid="scim-token-row">
                                            <td>{t.name.clone()}</td>
                                            <td><code>{t.masked_token}</code></td>
                                            <td>{format!("{} by {}", t.created_at.display(), t.created_by)}</td>
                                            <td>{t.last_used_at.map(Timestamp::display).unwrap_or_else(|| "Never".into())}</td>
                                            <td>{if t.revoked_at.is_some() { "Revoked" } else { "Active" }}</td>
                                            <td>
                                                {t.revoked_at.is_none().then(|| view! {
                                                    <ActionForm action=revoke>
                                                        <input type="hidden" name="id" value=t.id.to_string()/>
                                                        <ConfirmButton label="Revoke" subject=t.name.clone()
                                                            question=format!("Revoke {}?", t.name)
                                                            consequence="Your identity provider can no longer provision people with this token. This cannot be undone."
                                                            confirm="Revoke token"/>
                                                    </ActionForm>
                                                })}
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                })
            })}
        </Transition>
    }
}
