//! The Admin Panel's Billing section (Admins and Billing users) and a
//! workspace's limits panel (on the workspace's page).

use leptos::prelude::*;

use super::{loading, ConfirmButton, Done, FieldError, FormError, FormErrors};
use crate::{
    api::billing::{
        self, AddCard, AddMarketplace, RemovePaymentMethod, SetModelLimits, SetOrgLimit, SetRateLimits,
        SetWorkspaceBudget,
    },
    ids::WorkspaceId,
    model::ModelKind,
    money::format_usd,
};

/// A limit as the amount field shows it: empty for none, plain dollars otherwise.
fn amount_value(limit: Option<i64>) -> String {
    limit.map(|m| format_usd(m).trim_start_matches('$').replace(',', "")).unwrap_or_default()
}

/// "$12.00 of $50.00 (24%)", or the spend alone without a limit. Spend can
/// pass its limit (a provider reported more than was held): it says so.
pub(super) fn spend_against(spend: i64, limit: Option<i64>) -> String {
    match limit {
        Some(limit) if limit > 0 => {
            let percent = spend.saturating_mul(100) / limit;
            let over =
                if spend > limit { ", over the limit: providers reported more than was held" } else { "" };
            format!("{} of {} ({percent}%{over})", format_usd(spend), format_usd(limit))
        }
        Some(_) => format!("{} of {}", format_usd(spend), format_usd(0)),
        None => format!("{} (no limit)", format_usd(spend)),
    }
}

#[component]
pub fn BillingSection() -> impl IntoView {
    let add_card = ServerAction::<AddCard>::new();
    let add_marketplace = ServerAction::<AddMarketplace>::new();
    let remove = ServerAction::<RemovePaymentMethod>::new();
    let set_limit = ServerAction::<SetOrgLimit>::new();
    let set_budget = ServerAction::<SetWorkspaceBudget>::new();
    let card = FormErrors::new(add_card, "add-card", &["card_number", "card_expiry"]);
    let marketplace = FormErrors::new(add_marketplace, "add-marketplace", &["marketplace", "account_id"]);
    let org_limit = FormErrors::new(set_limit, "org-limit", &["amount"]);
    // One form per workspace: a refusal sits above the table, not by one row's field.
    let budget_errors = FormErrors::from(set_budget);
    let view_data = Resource::new(
        move || {
            [
                add_card.version(),
                add_marketplace.version(),
                remove.version(),
                set_limit.version(),
                set_budget.version(),
            ]
            .map(|v| v.get())
        },
        |_| billing::get_billing(),
    );
    view! {
        <FormError of=remove/>
        <Done value=remove.value() text="Payment method removed: billing is inactive and API keys are refused."/>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                view_data.await.map(|b| view! {
                    <h2>"Payment method"</h2>
                    {match &b.payment_method {
                        Some(method) => view! {
                            <p class="notice" data-testid="billing-status">{format!("Billing is active: {}.", method.describe())}</p>
                            <ActionForm action=remove>
                                <ConfirmButton label="Remove payment method"
                                    question="Remove the payment method?"
                                    consequence=match b.working_keys {
                                        1 => "Billing stops: the 1 API key of this Organization that works now will be refused (403) until a payment method is added.".to_string(),
                                        n => format!("Billing stops: the {n} API keys of this Organization that work now will be refused (403) until a payment method is added."),
                                    }
                                    confirm="Remove payment method"/>
                            </ActionForm>
                        }.into_any(),
                        None => view! {
                            <p class="form-error" data-testid="billing-status">
                                "Billing is inactive: the gateway refuses this organization's API keys until a payment method is added."
                            </p>
                        }.into_any(),
                    }}
                    <ActionForm action=add_card attr:class="inline-form" node_ref=card.emptied_on_success()>
                        <label>"Card number"
                            <input type="text" {..card.field("card_number")} inputmode="numeric" autocomplete="cc-number" required placeholder="4242 4242 4242 4242"/>
                            <FieldError of=card field="card_number"/>
                        </label>
                        <label>"Expiry"
                            <input type="text" {..card.field("card_expiry")} autocomplete="cc-exp" required placeholder="MM/YY" size="6"/>
                            <FieldError of=card field="card_expiry"/>
                        </label>
                        <button type="submit" disabled=move || add_card.pending().get()>"Save card"</button>
                    </ActionForm>
                    <FormError of=card/>
                    <p class="hint">"Only the card's brand, last 4 digits and expiry are kept."</p>
                    <ActionForm action=add_marketplace attr:class="inline-form">
                        <label>"Cloud marketplace"
                            <select name="marketplace">
                                <option value="aws">"AWS Marketplace"</option>
                                <option value="azure">"Azure Marketplace"</option>
                            </select>
                        </label>
                        <label>"Account id"
                            <input type="text" {..marketplace.field("account_id")} required placeholder="123456789012"/>
                            <FieldError of=marketplace field="account_id"/>
                        </label>
                        <button type="submit" disabled=move || add_marketplace.pending().get()>"Connect account"</button>
                    </ActionForm>
                    <FormError of=marketplace/>

                    <h2>"Monthly spending limit"</h2>
                    <p data-testid="org-spend">{format!("This month: {}", spend_against(b.month_spend_micros, b.monthly_limit_micros))}</p>
                    <ActionForm action=set_limit attr:class="inline-form">
                        <label>"Organization limit (USD)"
                            <input type="text" {..org_limit.field("amount")} inputmode="decimal" value=amount_value(b.monthly_limit_micros) placeholder="No limit"/>
                            <FieldError of=org_limit field="amount"/>
                        </label>
                        <button type="submit" disabled=move || set_limit.pending().get()>"Save limit"</button>
                    </ActionForm>
                    <FormError of=org_limit/>
                    <p class="hint">"Leave empty for no limit. Requests beyond a limit are refused with 429 until the next calendar month (UTC)."</p>

                    <h2>"Workspace budgets"</h2>
                    <FormError of=budget_errors/>
                    <table class="table">
                        <thead><tr><th>"Workspace"</th><th>"Spent this month"</th><th>"Budget (USD)"</th></tr></thead>
                        <tbody>
                            {b.workspaces.into_iter().map(|w| view! {
                                <tr data-testid="workspace-budget-row">
                                    <td>{w.workspace_name.clone()}</td>
                                    <td>{spend_against(w.month_spend_micros, w.monthly_budget_micros)}</td>
                                    <td>
                                        <ActionForm action=set_budget attr:class="inline-form">
                                            <input type="hidden" name="workspace_id" value=w.workspace_id.to_string()/>
                                            <input type="text" name="amount" inputmode="decimal" size="8"
                                                aria-label=format!("Budget of {}", w.workspace_name)
                                                value=amount_value(w.monthly_budget_micros) placeholder="No limit"/>
                                            <button type="submit" disabled=move || set_budget.pending().get()>"Set"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                })
            })}
        </Transition>
    }
}

/// A limit as the page shows it: the number, or "no limit".
fn limit_text(limit: Option<i64>) -> String {
    limit.map(|n| n.to_string()).unwrap_or_else(|| "no limit".into())
}

/// A workspace's rate limits, model allow-list, per-model token limits and budget, on its page.
#[component]
pub fn WorkspaceLimitsPanel(workspace_id: WorkspaceId) -> impl IntoView {
    let set = ServerAction::<SetRateLimits>::new();
    let set_model = ServerAction::<SetModelLimits>::new();
    let set_budget = ServerAction::<SetWorkspaceBudget>::new();
    let rate_errors = FormErrors::new(
        set,
        "rate-limits",
        &["requests_per_second", "requests_per_minute", "allowed_models"],
    );
    let model_errors =
        FormErrors::new(set_model, "model-limits", &["model", "tokens_per_minute", "tokens_per_month"]);
    let limits = Resource::new(
        move || (set.version().get(), set_model.version().get(), set_budget.version().get()),
        move |_| billing::get_workspace_limits(workspace_id),
    );
    view! {
        <FormError of=rate_errors/>
        <FormError of=model_errors/>
        <FormError of=set_budget/>
        <Transition fallback=loading>
            // Limits are for Admins and Billing users: others see no panel at all.
            {move || Suspend::new(async move {
                limits.await.ok().map(|(l, catalogue)| {
                    let rates = l.rate_limits.clone();
                    let models = rates.allowed_models.clone().map(|m| m.join(", ")).unwrap_or_default();
                    let names = catalogue
                        .iter()
                        .map(|m| format!("{}{}", m.id, if m.kind == ModelKind::Embedding { " (embeddings)" } else { "" }))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let count = |limit: Option<i64>| limit.map(|n| n.to_string()).unwrap_or_default();
                    let token_rows = rates
                        .tokens_limits_by_model
                        .iter()
                        .map(|(model, t)| view! {
                            <tr>
                                <td>{model.clone()}</td>
                                <td>{limit_text(t.tokens_per_minute)}</td>
                                <td>{limit_text(t.tokens_per_month)}</td>
                            </tr>
                        })
                        .collect_view();
                    let options = catalogue
                        .iter()
                        .map(|m| view! { <option value=m.id.clone()>{m.id.clone()}</option> })
                        .collect_view();
                    view! {
                        <h2>"Limits"</h2>
                        <p data-testid="workspace-limits">
                            {format!(
                                "Requests per second: {}. Requests per minute: {}. Models: {}. Budget: {}.",
                                limit_text(rates.requests_per_second),
                                limit_text(rates.requests_per_minute),
                                rates.allowed_models.as_ref().map(|m| m.join(", ")).unwrap_or_else(|| "all".into()),
                                spend_against(l.month_spend_micros, l.monthly_budget_micros),
                            )}
                        </p>
                        <ActionForm action=set attr:class="inline-form">
                            <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                            <label>"Requests per second" <input type="text" {..rate_errors.field("requests_per_second")} inputmode="numeric" size="8"
                                value=count(rates.requests_per_second) placeholder="No limit"/><FieldError of=rate_errors field="requests_per_second"/></label>
                            <label>"Requests per minute" <input type="text" {..rate_errors.field("requests_per_minute")} inputmode="numeric" size="8"
                                value=count(rates.requests_per_minute) placeholder="No limit"/><FieldError of=rate_errors field="requests_per_minute"/></label>
                            <label>"Allowed models" <input type="text" {..rate_errors.field("allowed_models")} value=models placeholder="All models"/><FieldError of=rate_errors field="allowed_models"/></label>
                            <button type="submit" disabled=move || set.pending().get()>"Save limits"</button>
                        </ActionForm>
                        <p class="hint">{format!("Models, separated by commas; empty allows all: {names}.")}</p>
                        <h3>"Tokens per model"</h3>
                        <table data-testid="model-token-limits">
                            <thead><tr><th>"Model"</th><th>"Tokens per minute"</th><th>"Tokens per month"</th></tr></thead>
                            <tbody>{token_rows}</tbody>
                        </table>
                        <ActionForm action=set_model node_ref=model_errors.emptied_on_success() attr:class="inline-form">
                            <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                            <label>"Model" <select {..model_errors.field("model")}>{options}</select><FieldError of=model_errors field="model"/></label>
                            <label>"Tokens per minute" <input type="text" {..model_errors.field("tokens_per_minute")} inputmode="numeric" size="10" placeholder="No limit"/><FieldError of=model_errors field="tokens_per_minute"/></label>
                            <label>"Tokens per month" <input type="text" {..model_errors.field("tokens_per_month")} inputmode="numeric" size="12" placeholder="No limit"/><FieldError of=model_errors field="tokens_per_month"/></label>
                            <button type="submit" disabled=move || set_model.pending().get()>"Save model limits"</button>
                        </ActionForm>
                        <p class="hint">"A call whose worst case (its input and max_tokens) does not fit in what is left is refused with 429; both fields empty remove the model's limits."</p>
                        <ActionForm action=set_budget attr:class="inline-form">
                            <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                            <label>"Monthly budget (USD)" <input type="text" name="amount" inputmode="decimal" size="8"
                                value=amount_value(l.monthly_budget_micros) placeholder="No limit"/></label>
                            <button type="submit" disabled=move || set_budget.pending().get()>"Save budget"</button>
                        </ActionForm>
                    }
                })
            })}
        </Transition>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::MICROS_PER_USD;

    #[test]
    fn limits_read_as_people_write_them() {
        assert_eq!(amount_value(Some(1_234 * MICROS_PER_USD + 500_000)), "1234.50");
        assert_eq!(amount_value(None), "");
        assert_eq!(spend_against(12 * MICROS_PER_USD, Some(50 * MICROS_PER_USD)), "$12.00 of $50.00 (24%)");
        assert_eq!(
            spend_against(60 * MICROS_PER_USD, Some(50 * MICROS_PER_USD)),
            "$60.00 of $50.00 (120%, over the limit: providers reported more than was held)"
        );
    }
}
