//! Pages. Each works without JavaScript (plain form posts) and better with it.

pub mod account;
pub mod admin;
mod api_keys;
pub mod backoffice;
mod billing;
mod domains;
mod forms;
mod groups;
pub mod invitation;
mod layout;
mod members;
mod scim;
mod service_accounts;
mod sso;
mod usage;

pub(crate) use forms::{FieldError, FilterForm, FormError, FormErrors};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::{Redirect, A},
    hooks::{use_location, use_query_map},
    location::Url,
};

use crate::{
    api::{self, CreateOrganization, LogIn, SignUp},
    error::AppError,
    model::{Landing, SignUpPolicy},
    validate::PASSWORD_MIN_CHARS,
};

/// `/`: sends each visitor where they belong.
#[component]
pub fn Home() -> impl IntoView {
    let landing = Resource::new(|| (), |_| api::get_landing());
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let path = match landing.await {
                    Ok(landing) => landing.path(),
                    Err(_) => Landing::LogIn.path(),
                };
                view! { <Redirect path=path/> }
            })}
        </Suspense>
    }
}

/// What a section shows while its data is on the way.
pub(crate) fn loading() -> impl IntoView {
    view! { <p class="muted">"Loading…"</p> }
}

/// Says that the last submission of a form succeeded, e.g. "Key revoked.".
#[component]
pub(crate) fn Done<T>(
    #[prop(into)] value: Signal<Option<Result<T, AppError>>>,
    text: &'static str,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
{
    move || matches!(value.get(), Some(Ok(_))).then(|| view! { <p class="notice" role="status">{text}</p> })
}

/// The button of an action that cannot be undone. It first asks, in a modal
/// dialog saying what will happen; the dialog's confirming button submits the
/// form it sits in. Until the page is interactive it does nothing.
#[component]
pub(crate) fn ConfirmButton(
    /// What the button says, e.g. "Revoke".
    label: &'static str,
    /// What it acts on, so that each row's button has its own name: "Revoke prod-backend".
    #[prop(into, optional)]
    subject: String,
    /// The dialog's question, e.g. "Revoke prod-backend?".
    #[prop(into)]
    question: String,
    /// What will happen, said before it does.
    #[prop(into)]
    consequence: String,
    /// The confirming button, e.g. "Revoke key".
    confirm: &'static str,
    /// The trigger's look: "link danger" in tables, "danger" on its own.
    #[prop(default = "link danger")]
    class: &'static str,
) -> impl IntoView {
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    let ask = move |_| {
        if let Some(dialog) = dialog.get() {
            let _ = dialog.show_modal();
        }
    };
    let close = move |_| {
        if let Some(dialog) = dialog.get() {
            dialog.close();
        }
    };
    let dialog_name = question.clone();
    let name = if subject.is_empty() { label.to_string() } else { format!("{label} {subject}") };
    view! {
        <button type="button" class=class aria-label=name on:click=ask>{label}</button>
        <dialog node_ref=dialog class="confirm" aria-label=dialog_name>
            <h2>{question}</h2>
            <p>{consequence}</p>
            <div class="actions">
                <button type="button" on:click=close>"Cancel"</button>
                <button type="submit" class="danger" on:click=close>{confirm}</button>
            </div>
        </dialog>
    }
}

/// A key just made, shown this once, with a copy button.
#[component]
pub(crate) fn NewKey(name: String, key: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let to_copy = key.clone();
    let copy = move |_| {
        let _ = window().navigator().clipboard().write_text(&to_copy);
        copied.set(true);
    };
    view! {
        <div class="new-key" role="status">
            <p><strong>{format!("Key \u{201c}{name}\u{201d} created.")}</strong>
               " Copy it now: it will not be shown again."</p>
            <code data-testid="new-key">{key}</code>
            <button type="button" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
        </div>
    }
}

/// A key or token made by a form posted before the page was interactive (or
/// with JavaScript off): the server kept it for the page the browser came back
/// to, which shows it this once.
#[component]
pub(crate) fn SecretFromFormPost() -> impl IntoView {
    // Only a page rendered by the server can have one; the browser's own
    // navigations never follow a plain form post.
    let held = Resource::new(
        || (),
        |_| async {
            #[cfg(feature = "ssr")]
            return crate::server::request::shown_once();
            #[cfg(not(feature = "ssr"))]
            None::<crate::model::NewSecret>
        },
    );
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                held.await.map(|new| view! { <NewKey name=new.name key=new.secret/> })
            })}
        </Suspense>
    }
}

#[component]
pub(crate) fn AuthCard(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <Title text=title/>
        <main class="auth">
            <div class="card">
                <p class="brand">"Chancery"</p>
                <h1>{title}</h1>
                {children()}
            </div>
        </main>
    }
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let policy = Resource::new(|| (), |_| api::get_sign_up_policy());
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match policy.await.unwrap_or_default() {
                    SignUpPolicy::InviteOnly => view! {
                        <AuthCard title="Create your account">
                            <p role="status">{SignUpPolicy::INVITE_ONLY}</p>
                            <p class="switch">"Already have an account? " <A href="/login">"Log in"</A></p>
                        </AuthCard>
                    }.into_any(),
                    policy => view! { <SignUpForm policy/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SignUpForm(policy: SignUpPolicy) -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let errors = FormErrors::new(action, "sign-up", &["name", "email", "password"]);
    let for_domains = match policy {
        SignUpPolicy::Domains(domains) => Some(format!("For addresses at {}.", domains.join(", "))),
        _ => None,
    };
    view! {
        <AuthCard title="Create your account">
            {for_domains.map(|text| view! { <p class="hint">{text}</p> })}
            <ActionForm action=action>
                <label>"Name"
                    <input type="text" {..errors.field("name")} autocomplete="name" required/>
                    <FieldError of=errors field="name"/>
                </label>
                <label>"Work email"
                    <input type="email" {..errors.field("email")} autocomplete="email" required/>
                    <FieldError of=errors field="email"/>
                </label>
                <label>
                    "Password"
                    <input type="password" {..errors.field("password")} autocomplete="new-password" required minlength=PASSWORD_MIN_CHARS/>
                    <span class="hint">{format!("At least {PASSWORD_MIN_CHARS} characters.")}</span>
                    <FieldError of=errors field="password"/>
                </label>
                <FormError of=errors/>
                <button type="submit" disabled=move || action.pending().get()>"Sign up"</button>
            </ActionForm>
            <p class="switch">"Already have an account? " <A href="/login">"Log in"</A></p>
        </AuthCard>
    }
}

/// The log-in page, asked to come back here after: `/login?next=<this page>`
/// (plain `/login` from the Admin Panel's home, where log-ins land anyway).
pub(crate) fn log_in_and_return() -> String {
    let location = use_location();
    let search = location.search.get_untracked();
    let search = search.trim_start_matches('?');
    let here = location.pathname.get_untracked() + if search.is_empty() { "" } else { "?" } + search;
    if here == "/admin" {
        return Landing::LogIn.path().to_string();
    }
    format!("{}?next={}", Landing::LogIn.path(), Url::escape(&here))
}

/// The page a log-in page was asked to come back to (`?next=`), checked by the server.
fn next_page() -> String {
    use_query_map().with_untracked(|query| query.get("next")).unwrap_or_default()
}

#[component]
pub fn LogInPage() -> impl IntoView {
    let action = ServerAction::<LogIn>::new();
    let errors = FormErrors::new(action, "log-in", &["email", "password"]);
    let next = next_page();
    let sso_link = if next.is_empty() {
        "/login/sso".to_string()
    } else {
        format!("/login/sso?next={}", Url::escape(&next))
    };
    // Why the last single sign-on in this browser failed, if it did.
    let notice = Resource::new(|| (), |_| api::sso::take_log_in_notice());
    view! {
        <AuthCard title="Log in">
            <Suspense>
                {move || Suspend::new(async move {
                    notice.await.ok().flatten().map(|notice| view! { <p class="form-error" role="alert">{notice}</p> })
                })}
            </Suspense>
            <ActionForm action=action>
                <label>"Email" <input type="email" {..errors.field("email")} autocomplete="username" required/><FieldError of=errors field="email"/></label>
                <label>"Password" <input type="password" {..errors.field("password")} autocomplete="current-password" required/><FieldError of=errors field="password"/></label>
                <input type="hidden" name="next" value=next/>
                <FormError of=errors/>
                <button type="submit" disabled=move || action.pending().get()>"Log in"</button>
            </ActionForm>
            <p class="switch"><A href="/forgot-password">"Forgot your password?"</A></p>
            <p class="switch"><A href=sso_link>"Continue with SSO"</A></p>
            <p class="switch">"New to Chancery? " <A href="/signup">"Create an account"</A></p>
        </AuthCard>
    }
}

/// Single sign-on: the person's work email tells which identity provider to go to.
#[component]
pub fn SsoLogInPage() -> impl IntoView {
    let action = ServerAction::<api::sso::StartSso>::new();
    let errors = FormErrors::new(action, "sso-log-in", &["email"]);
    view! {
        <AuthCard title="Log in with SSO">
            <p>"Enter your work email: you will continue at your organization's identity provider."</p>
            <ActionForm action=action>
                <label>"Work email" <input type="email" {..errors.field("email")} autocomplete="username" required/><FieldError of=errors field="email"/></label>
                <input type="hidden" name="next" value=next_page()/>
                <FormError of=errors/>
                <button type="submit" disabled=move || action.pending().get()>"Continue"</button>
            </ActionForm>
            <p class="switch"><A href="/login">"Log in with a password"</A></p>
        </AuthCard>
    }
}

/// Asks a signed-in person without an organization to name one.
#[component]
pub fn OnboardingPage() -> impl IntoView {
    let landing = Resource::new(|| (), |_| api::get_landing());
    let action = ServerAction::<CreateOrganization>::new();
    let errors = FormErrors::new(action, "new-organization", &["name"]);
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match landing.await {
                    Ok(Landing::NameOrganization(user)) => view! {
                        <AuthCard title="Name your organization">
                            <p>{format!("Welcome, {}. Your organization holds your members, workspaces and billing; you will be its Admin.", user.name)}</p>
                            <ActionForm action=action>
                                <label>"Organization name" <input type="text" {..errors.field("name")} autocomplete="organization" required/><FieldError of=errors field="name"/></label>
                                <FormError of=errors/>
                                <button type="submit" disabled=move || action.pending().get()>"Create organization"</button>
                            </ActionForm>
                        </AuthCard>
                    }.into_any(),
                    Ok(other) => view! { <Redirect path=other.path()/> }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <AuthCard title="Page not found">
            <p>"There is nothing at this address."</p>
            <p><A href="/">"Go to Chancery"</A></p>
        </AuthCard>
    }
}
