//! The Settings section's verified domains: claim one, publish its TXT record,
//! verify it, give it up.

use leptos::prelude::*;

use super::{loading, ConfirmButton, Done, FieldError, FormError, FormErrors};
use crate::{
    api::domains::{self, ClaimDomain, RemoveDomain, VerifyDomain},
    model::DomainView,
};

#[component]
pub(super) fn VerifiedDomains() -> impl IntoView {
    let claim = ServerAction::<ClaimDomain>::new();
    let verify = ServerAction::<VerifyDomain>::new();
    let remove = ServerAction::<RemoveDomain>::new();
    let claim_errors = FormErrors::new(claim, "claim-domain", &["domain"]);
    let domains = Resource::new(
        move || (claim.version().get(), verify.version().get(), remove.version().get()),
        |_| domains::list_domains(),
    );
    view! {
        <h2>"Verified domains"</h2>
        <p class="hint">
            "Prove your Organization owns a domain by publishing a DNS TXT record. Single sign-on finds your "
            "Organization by its verified domains; a domain is verified by one Organization only."
        </p>
        <ActionForm action=claim node_ref=claim_errors.emptied_on_success()>
            <label>"Domain" <input {..claim_errors.field("domain")} placeholder="example.com" required/><FieldError of=claim_errors field="domain"/></label>
            <button type="submit" disabled=move || claim.pending().get()>"Claim domain"</button>
        </ActionForm>
        <FormError of=claim_errors/>
        <FormError of=verify/>
        <FormError of=remove/>
        <Done value=remove.value() text="Domain removed."/>
        {move || matches!(verify.value().get(), Some(Ok(_))).then(|| view! { <p class="notice" role="status">"Domain verified."</p> })}
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                domains.await.map(|domains| if domains.is_empty() {
                    view! { <p class="muted">"No domain claimed yet."</p> }.into_any()
                } else {
                    view! {
                        <table class="table">
                            <thead><tr><th>"Domain"</th><th>"Status"</th><th>"TXT record"</th><th>"Actions"</th></tr></thead>
                            <tbody>{domains.into_iter().map(|d| view! { <DomainRow domain=d verify remove/> }).collect_view()}</tbody>
                        </table>
                    }.into_any()
                })
            })}
        </Transition>
    }
}

#[component]
fn DomainRow(
    domain: DomainView,
    verify: ServerAction<VerifyDomain>,
    remove: ServerAction<RemoveDomain>,
) -> impl IntoView {
    let status = match (&domain.verified_at, domain.verified_by.as_deref()) {
        (Some(at), Some("operator")) => format!("Verified by the operator, {}", at.display()),
        (Some(at), _) => format!("Verified, {}", at.display()),
        (None, _) => "Waiting for its TXT record".to_string(),
    };
    let verified = domain.verified_at.is_some();
    let DomainView { domain, record_name, record_value, .. } = domain;
    let to_verify = domain.clone();
    let to_remove = domain.clone();
    view! {
        <tr data-testid="domain-row">
            <td>{domain.clone()}</td>
            <td>{status}</td>
            <td>
                {(!verified).then(|| view! {
                    <span class="hint">"Name "</span><code>{record_name}</code>
                    <br/><span class="hint">"Value "</span><code>{record_value}</code>
                })}
            </td>
            <td>
                {(!verified).then(|| view! {
                    <ActionForm action=verify>
                        <input type="hidden" name="domain" value=to_verify/>
                        <button type="submit" class="link" disabled=move || verify.pending().get()>"Verify"</button>
                    </ActionForm>
                })}
                <ActionForm action=remove>
                    <input type="hidden" name="domain" value=to_remove/>
                    <ConfirmButton label="Remove" subject=domain.clone()
                        question=format!("Remove {domain}?")
                        consequence="Sign-ups and single sign-on stop recognising addresses at this domain as this Organization's."
                        confirm="Remove domain"/>
                </ActionForm>
            </td>
        </tr>
    }
}
