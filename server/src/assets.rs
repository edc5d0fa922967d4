//! The browser bundle under `/pkg`. A release build (`cargo leptos build
//! --release --precompress`, with `hash-files`) names each file by its content
//! and leaves a brotli and a gzip copy beside it: each file is sent compressed
//! as the browser accepts, and kept by the browser for a year without asking
//! again (a new build has new names).

use std::path::Path;

use axum::{extract::Request, middleware::Next, response::Response, Router};
use http::{header, HeaderValue};
use leptos::config::LeptosOptions;
use tower_http::services::ServeDir;

/// Kept for a year, never revalidated: the name changes when the content does.
const FOREVER: &str = "public, max-age=31536000, immutable";
/// Revalidated each time (`Last-Modified`): the name stays when the content changes.
const REVALIDATE: &str = "no-cache";

/// The service for `/pkg`, from `site_root/site_pkg_dir`.
pub fn bundle<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    let dir = Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    let hashed = options.hash_files;
    Router::new()
        .fallback_service(files)
        .layer(axum::middleware::from_fn(move |request, next| cache_policy(hashed, request, next)))
}

async fn cache_policy(hashed: bool, request: Request, next: Next) -> Response {
    // wasm-bindgen's snippets keep their names whatever their content.
    let named_by_content = hashed && !request.uri().path().starts_with("/snippets/");
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status() == http::StatusCode::NOT_MODIFIED {
        let policy = if named_by_content { FOREVER } else { REVALIDATE };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        // The same address answers in several encodings.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Leptos reads the hashed names from a file beside the server binary, which
/// cargo-leptos writes with the bundle: when it is there, the names are hashed.
pub fn names_are_hashed(options: &LeptosOptions) -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(options.hash_file.as_ref())))
        .is_some_and(|file| file.is_file())
}
