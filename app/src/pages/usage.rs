//! The Admin Panel's Usage section (Admins and Billing users): spend over time
//! as a stacked bar chart, by workspace, model or key; totals against limits;
//! CSV export. The range and grouping live in the address. And a workspace's
//! own usage, on its page, for everyone who works in it.

use leptos::prelude::*;
use leptos_router::{components::Form, hooks::use_query_map};

use super::{billing::spend_against, loading};
use crate::{
    api::billing::{self, get_usage},
    ids::WorkspaceId,
    model::{UsageBucket, UsageReport, UsageRow},
    money::format_usd,
};

/// A colour for each group drawn on its own; the others share the last one.
const COLORS: [&str; DRAWN_GROUPS + 1] = ["#4f46e5", "#0891b2", "#16a34a", "#ca8a04", "#dc2626", "#94a3b8"];
const DRAWN_GROUPS: usize = billing::USAGE_CHART_GROUPS;

#[component]
pub fn UsageSection() -> impl IntoView {
    let query = use_query_map();
    // The address may leave either out: the last 24 hours by workspace, as the form shows.
    let param = move |name: &str, default: &str| {
        query.with(|q| q.get(name).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string()))
    };
    let range = move || param("range", "24h");
    let group = move || param("group", "workspace");
    let report = Resource::new(move || (range(), group()), |(range, group)| get_usage(range, group));
    let csv = move || format!("/admin/usage.csv?range={}&group={}", range(), group());
    view! {
        <Form method="GET" action="/admin/usage" attr:class="inline-form">
            <label>"Range"
                <select name="range" prop:value=range>
                    <option value="24h">"Last 24 hours"</option>
                    <option value="7d">"Last 7 days"</option>
                    <option value="30d">"Last 30 days"</option>
                </select>
            </label>
            <label>"Group by"
                <select name="group" prop:value=group>
                    <option value="workspace">"Workspace"</option>
                    <option value="model">"Model"</option>
                    <option value="key">"API key"</option>
                </select>
            </label>
            <button type="submit">"Show"</button>
            <a href=csv rel="external" download class="button-link">"Export CSV"</a>
        </Form>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match report.await {
                    Ok((report, billing)) => {
                        let total: i64 = report.totals.iter().map(|r| r.cost_micros).sum();
                        let requests: i64 = report.totals.iter().map(|r| r.requests).sum();
                        let summed = report.totals.iter().any(|r| r.group_id == UsageRow::OTHERS);
                        view! {
                            <p data-testid="usage-total">{format!("{} in {requests} request(s) over this range.", format_usd(total))}</p>
                            <Chart report=report.clone()/>
                            <table class="table">
                                <thead><tr><th>"Group"</th><th>"Requests"</th><th>"Failed"</th><th>"Input tokens"</th><th>"Output tokens"</th><th>"Cost"</th></tr></thead>
                                <tbody>
                                    {report.totals.into_iter().map(|r| view! {
                                        <tr data-testid="usage-row">
                                            <td>{r.group_name}</td>
                                            <td>{r.requests}</td>
                                            <td>{r.failed}</td>
                                            <td>{r.input_tokens}</td>
                                            <td>{r.output_tokens}</td>
                                            <td>{format_usd(r.cost_micros)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            {summed.then(|| view! { <p class="muted">"The CSV export lists every group."</p> })}
                            <h2>"This month against limits"</h2>
                            <ul class="plain" data-testid="usage-limits">
                                <li>{format!("Organization: {}", spend_against(billing.month_spend_micros, billing.monthly_limit_micros))}</li>
                                {billing.workspaces.into_iter().map(|w| view! {
                                    <li>{format!("{}: {}", w.workspace_name, spend_against(w.month_spend_micros, w.monthly_budget_micros))}</li>
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Spend per bucket, stacked by group, drawn as SVG (no script needed).
#[component]
fn Chart(report: UsageReport) -> impl IntoView {
    let groups: Vec<String> = report.totals.iter().take(DRAWN_GROUPS).map(|r| r.group_id.clone()).collect();
    let mut legend: Vec<(String, &'static str)> = report
        .totals
        .iter()
        .take(DRAWN_GROUPS)
        .enumerate()
        .map(|(i, r)| (r.group_name.clone(), COLORS[i]))
        .collect();
    if report.totals.len() > DRAWN_GROUPS {
        legend.push(("Others".into(), COLORS[DRAWN_GROUPS]));
    }
    let (width, height, gap) = (720.0_f64, 180.0_f64, 2.0_f64);
    let max = report.buckets.iter().map(bucket_cost).max().unwrap_or(0).max(1) as f64;
    let bar = width / report.buckets.len().max(1) as f64;
    let bars = report
        .buckets
        .iter()
        .enumerate()
        .flat_map(|(i, bucket)| {
            let mut top = height;
            let x = i as f64 * bar + gap / 2.0;
            let label = format!("{}: {}", bucket.start.display(), format_usd(bucket_cost(bucket)));
            bucket
                .rows
                .iter()
                .map(|row| {
                    let color = groups.iter().position(|g| *g == row.group_id).map_or(COLORS[DRAWN_GROUPS], |i| COLORS[i]);
                    let h = row.cost_micros as f64 / max * height;
                    top -= h;
                    let title = format!("{label} · {} {}", row.group_name, format_usd(row.cost_micros));
                    view! {
                        <rect x=format!("{x:.1}") y=format!("{top:.1}") width=format!("{:.1}", (bar - gap).max(1.0))
                            height=format!("{h:.1}") fill=color><title>{title}</title></rect>
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect_view();
    let first = report.buckets.first().map(|b| b.start.display()).unwrap_or_default();
    let last = report.buckets.last().map(|b| b.start.display()).unwrap_or_default();
    view! {
        <figure class="chart" data-testid="usage-chart">
            <svg viewBox=format!("0 0 {width} {height}") role="img" aria-label="Spend over time" preserveAspectRatio="none">
                <line x1="0" y1=height x2=width y2=height stroke="#cbd5e1"/>
                {bars}
            </svg>
            <figcaption>
                <span class="muted">{format!("{first} → {last} · highest bar {}", format_usd(max as i64))}</span>
                <span class="legend">
                    {legend.into_iter().map(|(name, color)| view! {
                        <span class="legend-item"><span class="swatch" style=format!("background:{color}")></span>{name}</span>
                    }).collect_view()}
                </span>
            </figcaption>
        </figure>
    }
}

fn bucket_cost(bucket: &UsageBucket) -> i64 {
    bucket.rows.iter().map(|r| r.cost_micros).sum()
}

/// A workspace's last 30 days by model, on its page: for everyone who works in it.
#[component]
pub fn WorkspaceUsagePanel(workspace_id: WorkspaceId) -> impl IntoView {
    let report = Resource::new(|| (), move |_| billing::get_workspace_usage(workspace_id));
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                report.await.ok().map(|report| view! {
                    <h2>"Usage, last 30 days"</h2>
                    {if report.totals.is_empty() {
                        view! { <p class="muted" data-testid="workspace-usage">"No calls yet."</p> }.into_any()
                    } else {
                        view! {
                            <table class="table" data-testid="workspace-usage">
                                <thead><tr><th>"Model"</th><th>"Requests"</th><th>"Input tokens"</th><th>"Output tokens"</th><th>"Cost"</th></tr></thead>
                                <tbody>
                                    {report.totals.into_iter().map(|row| view! {
                                        <tr>
                                            <td>{row.group_name}</td>
                                            <td>{row.requests}</td>
                                            <td>{row.input_tokens}</td>
                                            <td>{row.output_tokens}</td>
                                            <td>{format_usd(row.cost_micros)}</td>
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
