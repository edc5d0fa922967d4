//! A workspace's API keys, on the workspace's page: create (shown once),
//! list masked, rotate with a grace period, revoke.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_query_map};

use super::{loading, ConfirmButton, Done, FieldError, FormError, FormErrors, NewKey};
use crate::{
    api::api_keys::{self, CreateWorkspaceKey, RevokeWorkspaceKey, RotateWorkspaceKey},
    ids::{ApiKeyId, WorkspaceId},
    model::{ApiKeyStatus, Slice},
    time::Timestamp,
};

fn when(at: Option<Timestamp>, none: &'static str) -> String {
    at.map(Timestamp::display).unwrap_or_else(|| none.to_string())
}

#[component]
pub fn WorkspaceKeysPanel(workspace_id: WorkspaceId) -> impl IntoView {
    let create = ServerAction::<CreateWorkspaceKey>::new();
    let rotate = ServerAction::<RotateWorkspaceKey>::new();
    let revoke = ServerAction::<RevokeWorkspaceKey>::new();
    let create_errors =
        FormErrors::new(create, "new-key", &["name", "expires_on", "allowed_models", "requests_per_minute"]);
    // The page of keys shown lives in the address: `?keys=` the last key of the page before.
    let query = use_query_map();
    let after = move || query.with(|q| q.get("keys")).and_then(|id| id.parse::<ApiKeyId>().ok());
    let keys = Resource::new(
        move || (after(), create.version().get(), rotate.version().get(), revoke.version().get()),
        move |(after, ..)| api_keys::list_workspace_keys(workspace_id, after),
    );
    // The key last sent to be revoked (the action forgets its input once done).
    let revoking = RwSignal::new(None::<ApiKeyId>);
    Effect::new(move |_| {
        if let Some(input) = revoke.input().get() {
            revoking.set(Some(input.key_id));
        }
    });
    // The newest key made here, by creation or rotation: shown once, and no
    // longer once revoked.
    let shown = move || {
        let created = create.value().get().and_then(Result::ok);
        let rotated = rotate.value().get().and_then(Result::ok);
        let newest = match (created, rotated) {
            (Some(c), Some(r)) => Some(if c.view.created_at >= r.view.created_at { c } else { r }),
            (c, r) => c.or(r),
        };
        let revoked = matches!(revoke.value().get(), Some(Ok(()))).then(|| revoking.get()).flatten();
        newest.filter(|key| Some(key.view.id) != revoked)
    };
    view! {
        <h2>"API keys"</h2>
        <ActionForm action=create node_ref=create_errors.emptied_on_success() attr:class="inline-form">
            <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
            <label>"Key name" <input type="text" {..create_errors.field("name")} required placeholder="prod-backend"/><FieldError of=create_errors field="name"/></label>
            <label>"Expires on" <input type="date" {..create_errors.field("expires_on")}/><FieldError of=create_errors field="expires_on"/></label>
            <label>"Key models" <input type="text" {..create_errors.field("allowed_models")} placeholder="The workspace's"/><FieldError of=create_errors field="allowed_models"/></label>
            <label>"Key requests per minute" <input type="text" {..create_errors.field("requests_per_minute")} inputmode="numeric" size="8" placeholder="The workspace's"/><FieldError of=create_errors field="requests_per_minute"/></label>
            <button type="submit" disabled=move || create.pending().get()>"Create key"</button>
        </ActionForm>
        <FormError of=create_errors/>
        <FormError of=rotate/>
        <FormError of=revoke/>
        <Done value=revoke.value() text="Key revoked: it no longer works."/>
        {move || shown().map(|k| view! { <NewKey name=k.view.name key=k.key/> })}
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let here = format!("/admin/workspaces/{workspace_id}");
                keys.await.map(|keys| {
                    let Slice { items: keys, next } = keys;
                    if keys.is_empty() && after().is_none() {
                        // A workspace's Members see only their own keys: "no keys" would mislead them.
                        return view! {
                            <p class="muted">"No keys that you can see yet: Members see their own keys, Admins every key."</p>
                        }.into_any();
                    }
                    let older = next.map(|last| format!("{here}?keys={last}"));
                    let newest = after().is_some().then(|| here.clone());
                    view! {
                        <table class="table">
                            <thead><tr><th>"Name"</th><th>"Key"</th><th>"Models"</th><th>"Requests/min"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th>"Status"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {keys.into_iter().map(|k| {
                                    let status = match k.status {
                                        ApiKeyStatus::Active if k.unused => "Unused for 30 days".to_string(),
                                        ApiKeyStatus::Active => "Active".into(),
                                        ApiKeyStatus::Rotating => format!("Rotated: works until {}", when(k.expires_at, "")),
                                        ApiKeyStatus::Expired => "Expired".into(),
                                        ApiKeyStatus::Revoked => format!("Revoked {}", when(k.revoked_at, "")),
                                    };
                                    let working = matches!(k.status, ApiKeyStatus::Active | ApiKeyStatus::Rotating);
                                    let name = k.name.clone();
                                    view! {
                                        <tr data-testid="api-key-row">
                                            <td>{k.name.clone()}</td>
                                            <td><code>{k.masked_key.clone()}</code></td>
                                            <td>{k.allowed_models.clone().map(|m| m.join(", ")).unwrap_or_else(|| "Workspace's".into())}</td>
                                            <td>{k.requests_per_minute.map(|r| r.to_string()).unwrap_or_else(|| "Workspace's".into())}</td>
                                            <td>{k.created_at.display()}</td>
                                            <td>{when(k.last_used_at, "Never")}</td>
                                            <td>
                                                {when(k.expires_at, "Never")}
                                                {k.beyond_policy.then(|| view! {
                                                    <span class="badge warn" title="Made before the key lifetime policy: it lives longer than new keys may">"Beyond policy"</span>
                                                })}
                                            </td>
                                            <td class:warning=k.unused>{status}</td>
                                            <td>
                                                {(k.status == ApiKeyStatus::Active).then(|| view! {
                                                    <ActionForm action=rotate attr:class="inline-form">
                                                        <input type="hidden" name="key_id" value=k.id.to_string()/>
                                                        <input type="number" name="grace_hours" min="0" max="720" value="24" size="4"
                                                            aria-label=format!("Grace hours for {}", k.name)/>
                                                        <button type="submit" class="link" disabled=move || rotate.pending().get()>"Rotate"</button>
                                                    </ActionForm>
                                                })}
                                                {working.then(|| view! {
                                                    <ActionForm action=revoke>
                                                        <input type="hidden" name="key_id" value=k.id.to_string()/>
                                                        <ConfirmButton label="Revoke" subject=name.clone()
                                                            question=format!("Revoke {name}?")
                                                            consequence="The key stops working at once: calls with it are refused (401). This cannot be undone."
                                                            confirm="Revoke key"/>
                                                    </ActionForm>
                                                })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <p class="pager">
                            {newest.map(|href| view! { <A href=href>"← Newest keys"</A> })}
                            {older.map(|href| view! { <A href=href attr:data-testid="older-keys">"Older keys →"</A> })}
                        </p>
                        <p class="hint">"Rotating makes a new key; the old one keeps working for the grace period (hours), then expires."</p>
                    }.into_any()
                })
            })}
        </Transition>
    }
}
