//! `/invite/{token}`: an invited person accepts, with a new account or an existing one.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::{loading, AuthCard, FieldError, FormError, FormErrors};
use crate::{
    api::{
        members::{self, AcceptInvitation, LogInFromInvitation, SignUpFromInvitation},
        LogOut,
    },
    model::InvitationPreview,
    validate::PASSWORD_MIN_CHARS,
};

#[component]
pub fn InvitationPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.with(|p| p.get("token").unwrap_or_default());
    let preview = Resource::new(token, members::get_invitation);
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match preview.await {
                    Ok(preview) => view! { <Accept preview token=token()/> }.into_any(),
                    Err(err) => view! {
                        <AuthCard title="Invitation">
                            <p class="form-error" role="alert">{err.to_string()}</p>
                        </AuthCard>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Accept(preview: InvitationPreview, token: String) -> impl IntoView {
    let accept = ServerAction::<AcceptInvitation>::new();
    let log_in = ServerAction::<LogInFromInvitation>::new();
    let sign_up = ServerAction::<SignUpFromInvitation>::new();
    let log_out = ServerAction::<LogOut>::new();
    let log_in_errors = FormErrors::new(log_in, "invitation-log-in", &["password"]);
    let sign_up_errors = FormErrors::new(sign_up, "invitation-sign-up", &["name", "password"]);
    let roles = preview.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join(", ");
    let intro = format!("You are invited to join {} as {roles}.", preview.org_name);
    let for_me = preview.signed_in_as.as_ref().map(|u| u.email.eq_ignore_ascii_case(&preview.email));
    let body = match (for_me, preview.account_exists) {
        (Some(true), _) => view! {
            <ActionForm action=accept>
                <input type="hidden" name="token" value=token/>
                <FormError of=accept/>
                <button type="submit" disabled=move || accept.pending().get()>"Accept invitation"</button>
            </ActionForm>
        }
        .into_any(),
        (Some(false), _) => view! {
            <p class="form-error" role="alert">
                {format!("This invitation is for {}, and you are logged in as {}.", preview.email,
                    preview.signed_in_as.map(|u| u.email).unwrap_or_default())}
            </p>
            <ActionForm action=log_out><button type="submit" disabled=move || log_out.pending().get()>"Log out"</button></ActionForm>
        }
        .into_any(),
        (None, true) => view! {
            <ActionForm action=log_in>
                <input type="hidden" name="token" value=token/>
                <label>"Email" <input type="email" value=preview.email.clone() readonly/></label>
                <label>"Password" <input type="password" {..log_in_errors.field("password")} autocomplete="current-password" required/><FieldError of=log_in_errors field="password"/></label>
                <FormError of=log_in_errors/>
                <button type="submit" disabled=move || log_in.pending().get()>"Log in and accept"</button>
            </ActionForm>
        }
        .into_any(),
        (None, false) => view! {
            <ActionForm action=sign_up>
                <input type="hidden" name="token" value=token/>
                <label>"Email" <input type="email" value=preview.email.clone() readonly/></label>
                <label>"Name" <input type="text" {..sign_up_errors.field("name")} autocomplete="name" required/><FieldError of=sign_up_errors field="name"/></label>
                <label>
                    "Password"
                    <input type="password" {..sign_up_errors.field("password")} autocomplete="new-password" required minlength=PASSWORD_MIN_CHARS/><FieldError of=sign_up_errors field="password"/>
                    <span class="hint">{format!("At least {PASSWORD_MIN_CHARS} characters.")}</span>
                </label>
                <FormError of=sign_up_errors/>
                <button type="submit" disabled=move || sign_up.pending().get()>"Create account and join"</button>
            </ActionForm>
        }
        .into_any(),
    };
    view! {
        <AuthCard title="Join your team">
            <p>{intro}</p>
            {body}
        </AuthCard>
    }
}
