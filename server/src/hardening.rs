//! Response headers and request checks every route gets: what browsers should
//! enforce (no framing, no sniffing, no referrer to other sites, HTTPS only
//! when served over it, nothing cached that may carry a secret), form posts
//! that must say where they come from, and request bodies with a stated limit
//! and a JSON refusal.

use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use http::{header, HeaderValue, Method, StatusCode};

/// Largest Admin API request body.
pub const MAX_ADMIN_API_BODY: usize = 1024 * 1024;
/// Largest gateway request body: room for long prompts, tool lists and inline images.
pub const MAX_GATEWAY_BODY: usize = 16 * 1024 * 1024;

/// For responses that set no policy of their own (pages set one with their
/// script nonce, see `app::shell`): nothing may load, nothing may frame it.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Security headers on every response; `hsts` when served over HTTPS.
pub async fn security_headers(hsts: bool, request: Request, next: Next) -> Response {
    let cacheable = is_static_asset(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Invitation links carry their token in the path: never send it to another
    // site. Our own form posts carry their page, to be sent back to it.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_CSP));
    }
    if hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    // Pages, server functions and API answers may carry a secret shown once.
    if !cacheable && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The built browser bundle and public files: the same for everyone.
fn is_static_asset(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.svg"
}

/// Browsers send `Origin` or `Sec-Fetch-Site` with every state-changing
/// request; one that carries neither did not come from a page of ours, so it
/// is refused before the cross-origin layer would let it through. (The machine
/// APIs, authenticated by their own headers, are not behind this check.)
pub async fn require_origin_on_writes(request: Request, next: Next) -> Response {
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let headers = request.headers();
    if writes && !headers.contains_key(header::ORIGIN) && !headers.contains_key("sec-fetch-site") {
        return (StatusCode::FORBIDDEN, "Cross-origin request refused: no Origin or Sec-Fetch-Site header.")
            .into_response();
    }
    next.run(request).await
}

/// A body over the limit answers in the APIs' JSON error shape, like every
/// other refusal there (axum's own answer is plain text).
pub async fn json_payload_too_large(limit: usize, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let body = serde_json::json!({ "error": {
        "type": "invalid_request_error",
        "code": "request_too_large",
        "message": format!("The request body is larger than the limit of {limit} bytes."),
        "param": null,
    }});
    (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
}
