//! Where a form's refusal is shown. An error that names one of the form's
//! fields sits next to that field, which says it is invalid (`aria-invalid`)
//! and points at the message (`aria-describedby`); any other error sits with
//! the form. Both go away as soon as the form is sent again, and a form that
//! succeeded is emptied, so that nothing typed (a card number) stays behind.

use leptos::{html, prelude::*, server_fn::ServerFn, tachys::html::attribute::Attribute};

use crate::error::AppError;

/// The refusals of one form (or of one action's forms, repeated per row).
/// Not generic over the action, so that the components below are compiled
/// once for every form of the app, not once per action (the browser's bundle).
#[derive(Clone, Copy)]
pub(crate) struct FormErrors {
    /// The last refusal, unless the form is being sent again.
    current: Signal<Option<AppError>>,
    /// The last submission succeeded.
    succeeded: Signal<bool>,
    /// Unique on the page: the messages' ids are built from it.
    form: &'static str,
    /// The fields this form places next to their inputs.
    fields: &'static [&'static str],
}

impl FormErrors {
    /// `form` must be unique on the page; `fields` are the inputs that show
    /// their own errors (each with `field` and a `FieldError`).
    pub fn new<S>(action: ServerAction<S>, form: &'static str, fields: &'static [&'static str]) -> Self
    where
        S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
        S::Output: Clone + Send + Sync + 'static,
    {
        let (value, pending) = (action.value(), action.pending());
        let current = Signal::derive(move || {
            if pending.get() {
                return None;
            }
            value.with(|value| value.as_ref().and_then(|result| result.as_ref().err().cloned()))
        });
        let succeeded = Signal::derive(move || value.with(|value| matches!(value, Some(Ok(_)))));
        Self { current, succeeded, form, fields }
    }

    /// The last refusal if it names `field`.
    fn on(self, field: &'static str) -> Option<AppError> {
        self.current.get().filter(|err| err.field() == Some(field))
    }

    /// The last refusal if it names none of the placed fields.
    fn unplaced(self) -> Option<AppError> {
        self.current.get().filter(|err| err.field().is_none_or(|f| !self.fields.contains(&f)))
    }

    fn message_id(self, field: &'static str) -> String {
        format!("{}-{}-error", self.form, field.replace('_', "-"))
    }

    /// An input's `name`, with `aria-invalid` and `aria-describedby` (its
    /// message) when the last refusal names it: `<input {..errors.field("email")}/>`.
    pub fn field(self, field: &'static str) -> impl Attribute {
        use leptos::tachys::html::attribute::{aria_describedby, aria_invalid, name};
        (
            name(field),
            aria_invalid(move || self.on(field).map(|_| "true")),
            aria_describedby(move || self.on(field).map(|_| self.message_id(field))),
        )
    }

    /// A form to empty when it succeeds (see `ActionForm`'s `node_ref`).
    pub fn emptied_on_success(self) -> NodeRef<html::Form> {
        let form = NodeRef::<html::Form>::new();
        Effect::new(move || {
            if self.succeeded.get() {
                if let Some(form) = form.get_untracked() {
                    form.reset();
                }
            }
        });
        form
    }
}

impl<S> From<ServerAction<S>> for FormErrors
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    /// A form without fields of its own to mark: every refusal sits with the form.
    fn from(action: ServerAction<S>) -> Self {
        Self::new(action, "", &[])
    }
}

/// The refusal of a form that names none of its placed fields, announced to screen readers.
#[component]
pub(crate) fn FormError(#[prop(into)] of: FormErrors) -> impl IntoView {
    move || {
        of.unplaced().map(|err| {
            view! { <p class="form-error" role="alert" data-field=err.field().map(str::to_string)>{err.to_string()}</p> }
        })
    }
}

/// The refusal naming `field`, next to its input.
#[component]
pub(crate) fn FieldError(of: FormErrors, field: &'static str) -> impl IntoView {
    move || {
        of.on(field).map(|err| {
            view! { <span class="field-error" id=of.message_id(field) role="alert">{err.to_string()}</span> }
        })
    }
}

/// A search or filter form (GET) whose address keeps only the fields filled
/// in: `?role=admin`, not `?q=&role=admin&status=&=`. Before the page is
/// interactive the browser sends it as it is, which the pages read the same.
#[component]
pub(crate) fn FilterForm(action: &'static str, children: Children) -> impl IntoView {
    let navigate = leptos_router::hooks::use_navigate();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let form: web_sys::HtmlFormElement = event_target(&event);
        let query = web_sys::FormData::new_with_form(&form)
            .and_then(|data| web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data))
            .map(|params| String::from(params.to_string()))
            .unwrap_or_default();
        let filled: Vec<&str> =
            query.split('&').filter(|pair| !pair.is_empty() && !pair.ends_with('=')).collect();
        let path =
            if filled.is_empty() { action.to_string() } else { format!("{action}?{}", filled.join("&")) };
        navigate(&path, Default::default());
    };
    view! { <form method="get" action=action class="inline-form" on:submit=submit>{children()}</form> }
}
