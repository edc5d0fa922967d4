//! The Admin Panel's Usage section (Admins and Billing users): spend over time
//! as a stacked bar chart, by workspace, model or key; totals against limits;
//! CSV export. The range and grouping live in the address. And a workspace's
//! own usage, on its page, for everyone who works in it.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{billing::spend_against, loading, FilterForm};
use crate::{
    api::billing::{self, get_usage},
    ids::WorkspaceId,
    model::{UsageBucket, UsageReport, UsageRow},
    money::format_usd,
    time::Timestamp,
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
        <FilterForm action="/admin/usage">
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
        </FilterForm>
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
                            <ul class="plain budgets" data-testid="usage-limits">
                                <SpendBar label="Organization".into() spend=billing.month_spend_micros limit=billing.monthly_limit_micros/>
                                {billing.workspaces.into_iter().map(|w| view! {
                                    <SpendBar label=w.workspace_name spend=w.month_spend_micros limit=w.monthly_budget_micros/>
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

/// Spend per bucket, stacked by group: bars drawn as SVG (each says its value
/// on hover), a money axis, time ticks and a legend in HTML beside it, so
/// their text keeps its size on a phone as on a laptop. No script needed.
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
    let highest = report.buckets.iter().map(bucket_cost).max().unwrap_or(0);
    let top = axis_top(highest);
    let bar = width / report.buckets.len().max(1) as f64;
    let bars = report
        .buckets
        .iter()
        .enumerate()
        .flat_map(|(i, bucket)| {
            let mut y = height;
            let x = i as f64 * bar + gap / 2.0;
            let label = format!("{}: {}", bucket.start.display(), format_usd(bucket_cost(bucket)));
            bucket
                .rows
                .iter()
                .map(|row| {
                    let color = groups.iter().position(|g| *g == row.group_id).map_or(COLORS[DRAWN_GROUPS], |i| COLORS[i]);
                    let h = row.cost_micros as f64 / top as f64 * height;
                    y -= h;
                    let title = format!("{label} · {} {}", row.group_name, format_usd(row.cost_micros));
                    view! {
                        <rect x=format!("{x:.1}") y=format!("{y:.1}") width=format!("{:.1}", (bar - gap).max(1.0))
                            height=format!("{h:.1}") fill=color><title>{title}</title></rect>
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect_view();
    let gridlines = [0.0, height / 2.0, height].map(|y| {
        view! { <line x1="0" y1=y x2=width y2=y class="gridline" vector-effect="non-scaling-stroke"/> }
    });
    let starts: Vec<Timestamp> = report.buckets.iter().map(|b| b.start).collect();
    let first = starts.first().map(|t| t.display()).unwrap_or_default();
    let last = starts.last().map(|t| t.display()).unwrap_or_default();
    view! {
        <figure class="chart" data-testid="usage-chart">
            <div class="chart-plot">
                <div class="chart-y" aria-hidden="true">
                    <span>{format_usd(top)}</span>
                    <span>{format_usd(top / 2)}</span>
                    <span>{format_usd(0)}</span>
                </div>
                <svg viewBox=format!("0 0 {width} {height}") preserveAspectRatio="none" role="img"
                    aria-label=format!("Spend from {first} to {last}; the highest bar is {}.", format_usd(highest))>
                    {gridlines}
                    {bars}
                </svg>
                <span></span>
                <div class="chart-x" aria-hidden="true" data-testid="usage-chart-ticks">
                    {time_ticks(&starts).into_iter().map(|(percent, label)| view! {
                        <span style=format!("left:{percent:.2}%")>{label}</span>
                    }).collect_view()}
                </div>
            </div>
            <figcaption class="legend">
                {legend.into_iter().map(|(name, color)| view! {
                    <span class="legend-item"><span class="swatch" style=format!("background:{color}")></span>{name}</span>
                }).collect_view()}
            </figcaption>
        </figure>
    }
}

/// The money axis's top: the least round amount (1, 2 or 5 times a power of
/// ten micro-USD, a cent at least) at or above the highest bar.
fn axis_top(highest: i64) -> i64 {
    let highest = highest.max(10_000);
    let mut magnitude = 1_i64;
    while magnitude <= highest / 10 {
        magnitude *= 10;
    }
    [1, 2, 5, 10].into_iter().map(|step| step * magnitude).find(|top| *top >= highest).unwrap_or(highest)
}

/// Up to five labels under the bars, spread over the range: where each sits
/// (percent of the width, at its bar's middle) and the hour (a range of a
/// day) or the date it names.
fn time_ticks(starts: &[Timestamp]) -> Vec<(f64, String)> {
    let (Some(first), Some(last)) = (starts.first(), starts.last()) else {
        return Vec::new();
    };
    let format = if last.0 - first.0 <= 86_400_000 { "%H:%M" } else { "%b %-d" };
    let n = starts.len();
    let mut indexes: Vec<usize> = (0..5).map(|k| k * (n - 1) / 4).collect();
    indexes.dedup();
    indexes
        .into_iter()
        .map(|i| ((i as f64 + 0.5) / n as f64 * 100.0, starts[i].to_datetime().format(format).to_string()))
        .collect()
}

/// This month's spend against a limit, in words and as a bar (full at the limit).
#[component]
fn SpendBar(label: String, spend: i64, limit: Option<i64>) -> impl IntoView {
    let filled = limit
        .filter(|limit| *limit > 0)
        .map(|limit| (spend.clamp(0, limit) as f64 / limit as f64 * 100.0, spend > limit));
    view! {
        <li>
            {format!("{label}: {}", spend_against(spend, limit))}
            {filled.map(|(percent, over)| view! {
                <span class="spend-track" aria-hidden="true">
                    <span class="spend-fill" class:over=over style=format!("width:{percent:.1}%")></span>
                </span>
            })}
        </li>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_money_axis_ends_on_a_round_amount_above_the_highest_bar() {
        assert_eq!(axis_top(0), 10_000, "a cent when nothing was spent");
        assert_eq!(axis_top(10_000), 10_000);
        assert_eq!(axis_top(10_001), 20_000);
        assert_eq!(axis_top(1_234_567), 2_000_000);
        assert_eq!(axis_top(3_000_000), 5_000_000);
        assert_eq!(axis_top(7_500_000), 10_000_000);
    }

    #[test]
    fn time_ticks_spread_over_the_range() {
        let hour = 3_600_000;
        let day: Vec<Timestamp> = (0..24).map(|h| Timestamp(h * hour)).collect();
        let ticks = time_ticks(&day);
        let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["00:00", "05:00", "11:00", "17:00", "23:00"]);
        assert!((ticks[0].0 - 100.0 / 48.0).abs() < 1e-9 && ticks[4].0 < 100.0);
        let month: Vec<Timestamp> = (0..30).map(|d| Timestamp(d * 24 * hour)).collect();
        assert_eq!(time_ticks(&month)[0].1, "Jan 1");
        assert_eq!(time_ticks(&[Timestamp(0)]).len(), 1);
        assert!(time_ticks(&[]).is_empty());
    }
}
