//! A workspace's service accounts, on its page (its Admins only): make one,
//! make it a key (shown once), delete it (its keys stop).

use leptos::prelude::*;

use super::{ConfirmButton, Done, FieldError, FormError, FormErrors, NewKey};
use crate::{
    api::{
        api_keys::CreateWorkspaceKey,
        service_accounts::{self, CreateServiceAccount, DeleteServiceAccount},
    },
    ids::WorkspaceId,
};

#[component]
pub fn ServiceAccountsPanel(workspace_id: WorkspaceId) -> impl IntoView {
    let create = ServerAction::<CreateServiceAccount>::new();
    let remove = ServerAction::<DeleteServiceAccount>::new();
    let make_key = ServerAction::<CreateWorkspaceKey>::new();
    let create_errors = FormErrors::new(create, "new-service-account", &["name", "description"]);
    let accounts = Resource::new(
        move || (create.version().get(), remove.version().get()),
        move |_| service_accounts::list_service_accounts(workspace_id),
    );
    view! {
        <Transition fallback=|| ()>
            // Service accounts are the workspace Admins': others see no panel.
            {move || Suspend::new(async move {
                accounts.await.ok().map(|accounts| view! {
                    <h2>"Service accounts"</h2>
                    <p class="hint">"Their keys keep working whoever leaves; deleting an account stops its keys."</p>
                    <ActionForm action=create node_ref=create_errors.emptied_on_success() attr:class="inline-form">
                        <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                        <label>"Account name" <input type="text" {..create_errors.field("name")} required placeholder="nightly-batch"/><FieldError of=create_errors field="name"/></label>
                        <label>"Account description" <input type="text" {..create_errors.field("description")}/><FieldError of=create_errors field="description"/></label>
                        <button type="submit" disabled=move || create.pending().get()>"Create service account"</button>
                    </ActionForm>
                    {if accounts.is_empty() {
                        view! { <p class="muted">"No service accounts."</p> }.into_any()
                    } else {
                        view! {
                            <table class="table">
                                <thead><tr><th>"Name"</th><th>"Description"</th><th>"Role"</th><th>"Actions"</th></tr></thead>
                                <tbody>
                                    {accounts.into_iter().map(|a| {
    let name = a.name.clone();
    view! {
                                        <tr data-testid="service-account-row">
                                            <td>{a.name.clone()}</td>
                                            <td>{a.description.clone().unwrap_or_default()}</td>
                                            <td>{a.role.label()}</td>
                                            <td>
                                                <ActionForm action=make_key attr:class="inline-form">
                                                    <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                                                    <input type="hidden" name="service_account_id" value=a.id.to_string()/>
                                                    <input type="hidden" name="name" value=a.name.clone()/>
                                                    <input type="hidden" name="expires_on" value=""/>
                                                    <input type="hidden" name="allowed_models" value=""/>
                                                    <button type="submit" disabled=move || make_key.pending().get()>"Make key"</button>
                                                </ActionForm>
                                                <ActionForm action=remove attr:class="inline-form">
                                                    <input type="hidden" name="id" value=a.id.to_string()/>
                                                    <ConfirmButton label="Delete" subject=name.clone() class="danger"
                                                        question=format!("Delete {name}?")
                                                        consequence="Its API keys stop working at once. This cannot be undone."
                                                        confirm="Delete service account"/>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }}).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                })
            })}
        </Transition>
        <FormError of=create_errors/>
        <FormError of=remove/>
        <Done value=remove.value() text="Service account deleted: its keys no longer work."/>
        <FormError of=make_key/>
        {move || make_key.value().get().and_then(Result::ok).map(|k| view! { <NewKey name=k.view.name key=k.key/> })}
    }
}
