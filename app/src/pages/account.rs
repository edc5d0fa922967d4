//! One's own account: `/forgot-password` asks for a reset link,
//! `/reset-password/{token}` sets a new password with one, `/account` changes
//! it when signed in, and `/verify-email/{token}` proves one's address.

use leptos::prelude::*;
use leptos_router::{components::Redirect, components::A, hooks::use_params_map};

use super::{loading, log_in_and_return, AuthCard, FieldError, FormError, FormErrors};
use crate::{
    api::{
        self,
        account::{ChangePassword, RequestPasswordReset, ResendVerification, ResetPassword, VerifyEmail},
    },
    model::Landing,
    validate::PASSWORD_MIN_CHARS,
};

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let action = ServerAction::<RequestPasswordReset>::new();
    let errors = FormErrors::new(action, "forgot-password", &["email"]);
    view! {
        <AuthCard title="Reset your password">
            <p>"Enter the email address you log in with: we will email it a link to choose a new password."</p>
            <ActionForm action=action node_ref=errors.emptied_on_success()>
                <label>"Email" <input type="email" {..errors.field("email")} autocomplete="username" required/><FieldError of=errors field="email"/></label>
                <FormError of=errors/>
                <button type="submit" disabled=move || action.pending().get()>"Email me a link"</button>
            </ActionForm>
            {move || action.value().get().and_then(Result::ok).map(|told| view! { <p class="notice" role="status">{told}</p> })}
            <p class="switch"><A href="/login">"Back to log in"</A></p>
        </AuthCard>
    }
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let params = use_params_map();
    let token = params.with_untracked(|p| p.get("token").unwrap_or_default());
    let action = ServerAction::<ResetPassword>::new();
    let errors = FormErrors::new(action, "reset-password", &["password"]);
    view! {
        <AuthCard title="Choose a new password">
            <ActionForm action=action node_ref=errors.emptied_on_success()>
                <input type="hidden" name="token" value=token/>
                <label>
                    "New password"
                    <input type="password" {..errors.field("password")} autocomplete="new-password" required minlength=PASSWORD_MIN_CHARS/><FieldError of=errors field="password"/>
                    <span class="hint">{format!("At least {PASSWORD_MIN_CHARS} characters. You will be logged in, and logged out everywhere else.")}</span>
                </label>
                <FormError of=errors/>
                <button type="submit" disabled=move || action.pending().get()>"Save password and log in"</button>
            </ActionForm>
            <p class="switch"><A href="/forgot-password">"Ask for a new link"</A></p>
        </AuthCard>
    }
}

/// The signed-in person's own account: who they are, and their password.
#[component]
pub fn AccountPage() -> impl IntoView {
    let landing = Resource::new(|| (), |_| api::get_landing());
    let change = ServerAction::<ChangePassword>::new();
    let errors = FormErrors::new(change, "change-password", &["current_password", "new_password"]);
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let user = match landing.await {
                    Ok(Landing::NameOrganization(user) | Landing::AdminPanel(user)) => user,
                    _ => return view! { <Redirect path=log_in_and_return()/> }.into_any(),
                };
                view! {
                    <AuthCard title="Your account">
                        <p data-testid="account-who">{format!("{} \u{b7} {}", user.name, user.email)}</p>
                        <h2>"Change your password"</h2>
                        <ActionForm action=change node_ref=errors.emptied_on_success()>
                            <label>"Current password" <input type="password" {..errors.field("current_password")} autocomplete="current-password" required/><FieldError of=errors field="current_password"/></label>
                            <label>
                                "New password"
                                <input type="password" {..errors.field("new_password")} autocomplete="new-password" required minlength=PASSWORD_MIN_CHARS/><FieldError of=errors field="new_password"/>
                                <span class="hint">{format!("At least {PASSWORD_MIN_CHARS} characters. Your other sessions will end.")}</span>
                            </label>
                            <FormError of=errors/>
                            <button type="submit" disabled=move || change.pending().get()>"Change password"</button>
                        </ActionForm>
                        {move || matches!(change.value().get(), Some(Ok(()))).then(|| view! {
                            <p class="notice" role="status">"Password changed. You were logged out everywhere else."</p>
                        })}
                        <p class="switch"><A href="/">"Back to Chancery"</A></p>
                    </AuthCard>
                }.into_any()
            })}
        </Suspense>
    }
}

/// Proves the address an emailed link was sent to (a button, so link scanners
/// that open it do not use it up).
#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let params = use_params_map();
    let token = params.with_untracked(|p| p.get("token").unwrap_or_default());
    let action = ServerAction::<VerifyEmail>::new();
    view! {
        <AuthCard title="Confirm your email address">
            {move || match action.value().get() {
                Some(Ok(())) => view! {
                    <p class="notice" role="status">"Your email address is confirmed."</p>
                    <p class="switch"><A href="/">"Go to Chancery"</A></p>
                }.into_any(),
                _ => {
                    let token = token.clone();
                    view! {
                    <ActionForm action=action>
                        <input type="hidden" name="token" value=token/>
                        <FormError of=action/>
                        <button type="submit" disabled=move || action.pending().get()>"Confirm my address"</button>
                    </ActionForm>
                }.into_any()
                }
            }}
        </AuthCard>
    }
}

/// Asks a signed-in person whose address is not proven to open the emailed link.
#[component]
pub(crate) fn UnverifiedEmail(email: String) -> impl IntoView {
    let resend = ServerAction::<ResendVerification>::new();
    view! {
        <div class="notice" data-testid="unverified-email">
            <p>{format!("Confirm your email address: open the link we emailed to {email}.")}</p>
            <ActionForm action=resend>
                <button type="submit" class="link" disabled=move || resend.pending().get()>"Send the link again"</button>
            </ActionForm>
            {move || matches!(resend.value().get(), Some(Ok(()))).then(|| view! { <p>"Sent."</p> })}
            <FormError of=resend/>
        </div>
    }
}
