//! `/metrics`: Prometheus's text format, for whoever holds the token only,
//! counting what the gateway and the HTTP server did.

use http::{header, Request, StatusCode};
use serde_json::json;

use crate::{
    common::TestApp,
    gateway::{billed, chat},
};

crate::on_both_databases!(metrics_are_for_the_token_holder_and_count_what_happened);

async fn metrics_are_for_the_token_holder_and_count_what_happened(mut app: TestApp) {
    app.use_metrics_token("scrape-secret");
    let (_org, _admin_key, key) = billed(&app).await;
    let answered =
        app.gateway("POST", "/v1/chat/completions", &key, Some(chat("mistral-small-latest", "Hi"))).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    let refused = app.gateway("POST", "/v1/chat/completions", "sk-wrong", Some(json!({}))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    app.state.gateway.flush().await;

    let scrape = |token: Option<&str>| {
        let mut request = Request::builder().uri("/metrics");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        let mut client = app.client("192.0.2.80");
        async move { client.send(request).await }
    };
    assert_eq!(scrape(None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(Some("scrape-secre")).await.status, StatusCode::UNAUTHORIZED);
    let metrics = scrape(Some("scrape-secret")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.body;
    let has = |name: &str, labels: &[&str]| {
        text.lines().any(|line| {
            line.starts_with(&format!("{name}{{")) && labels.iter().all(|label| line.contains(label))
                || labels.is_empty() && line.starts_with(&format!("{name} "))
        })
    };
    let gateway_ok = ["status=\"200\"", "code=\"ok\"", "model=\"mistral-small-latest\""];
    assert!(has("chancery_gateway_requests_total", &gateway_ok), "{text}");
    assert!(has(
        "chancery_gateway_requests_total",
        &["status=\"401\"", "code=\"invalid_api_key\"", "model=\"-\""]
    ));
    assert!(has("chancery_gateway_tokens_total", &["model=\"mistral-small-latest\"", "kind=\"output\""]));
    assert!(has("chancery_gateway_cost_usd_micros_total", &["model=\"mistral-small-latest\""]));
    assert!(has("chancery_gateway_overhead_seconds_bucket", &["le=\"0.001\""]), "{text}");
    assert!(has("chancery_gateway_upstream_seconds_count", &[]), "{text}");
    assert!(has("chancery_http_requests_total", &["route=\"/v1/chat/completions\"", "status=\"200\""]));
    assert!(has("chancery_db_pool_connections", &["state=\"idle\""]));
    for level in [
        "chancery_gateway_snapshot_version",
        "chancery_meter_queue_depth",
        "chancery_gateway_calls_in_flight",
    ] {
        assert!(has(level, &[]), "{level}: {text}");
    }
    assert!(text.contains("# HELP chancery_gateway_overhead_seconds"), "{text}");
    assert!(!text.contains(&key) && !text.contains("sk-wrong"), "no secret in the metrics");
}
