//! A browsable API reference, rendered on the server from the OpenAPI document
//! (no JavaScript, nothing fetched from elsewhere).

use app::server::state::AppState;
use axum::{
    extract::State,
    response::{Html, IntoResponse},
};
use http::header;
use serde_json::Value;
use utoipa::OpenApi;

use super::ApiDoc;
use crate::html::escape;

/// Nothing but our own stylesheet may load.
const CSP: &str =
    "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub async fn page(State(state): State<AppState>) -> impl IntoResponse {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let mut html = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Admin API reference · Chancery</title>",
    );
    html += &app::stylesheet_link(state.leptos_options.clone());
    html += "</head><body><main class=\"panel\">";
    html += &format!("<h1>{}</h1>", escape(doc["info"]["title"].as_str().unwrap_or("Admin API")));
    html += &format!("<p>{}</p>", escape(doc["info"]["description"].as_str().unwrap_or_default()));
    html += "<p>Machine-readable: <a href=\"/api/admin/openapi.json\">openapi.json</a> (OpenAPI ";
    html += &escape(doc["openapi"].as_str().unwrap_or_default());
    html += ").</p>";
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                html += &operation(method, path, op);
            }
        }
    }
    html += &event_catalogue();
    html += "</main></body></html>";
    ([(header::CONTENT_SECURITY_POLICY, CSP)], Html(html))
}

/// Every event type the audit log records, and the old names still found by filters.
fn event_catalogue() -> String {
    use app::audit_events::{EVENT_TYPES, RENAMED};
    let mut out = String::from(
        "<section class=\"endpoint\" id=\"audit-event-types\"><h2>Audit event types</h2>\
         <p>The <code>event_type</code> of <code>GET /audit-logs</code>: Mistral's name where Mistral records \
         the event, the same style where it does not.</p>\
         <table class=\"table\" data-testid=\"event-types\"><thead><tr><th>Event type</th><th>Target type</th>\
         <th>Meaning</th><th>Also Mistral's</th></tr></thead><tbody>",
    );
    for event in EVENT_TYPES {
        out += &format!(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(event.name),
            escape(&event.targets.join(", ")),
            escape(event.summary),
            if event.mistral { "yes" } else { "" }
        );
    }
    out += "</tbody></table><p>Renamed (events recorded before keep their old name in storage, \
            are listed under the new one, and a filter on either finds them):</p><ul>";
    for (old, new) in RENAMED {
        out += &format!("<li><code>{}</code> is now <code>{}</code></li>", escape(old), escape(new));
    }
    out + "</ul></section>"
}

fn operation(method: &str, path: &str, op: &Value) -> String {
    let mut out = format!(
        "<section class=\"endpoint\"><h2><code>{} {}</code></h2><p>{}</p>",
        escape(&method.to_uppercase()),
        escape(path),
        escape(op["summary"].as_str().or(op["description"].as_str()).unwrap_or_default())
    );
    if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
        out += "<table class=\"table\"><thead><tr><th>Parameter</th><th>In</th><th>Description</th></tr></thead><tbody>";
        for p in params {
            out += &format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(p["name"].as_str().unwrap_or_default()),
                escape(p["in"].as_str().unwrap_or_default()),
                escape(p["description"].as_str().unwrap_or_default())
            );
        }
        out += "</tbody></table>";
    }
    if let Some(responses) = op["responses"].as_object() {
        out += "<ul>";
        for (status, response) in responses {
            out += &format!(
                "<li><code>{}</code> {}</li>",
                escape(status),
                escape(response["description"].as_str().unwrap_or_default())
            );
        }
        out += "</ul>";
    }
    out + "</section>"
}
