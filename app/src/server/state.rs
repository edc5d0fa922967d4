//! Shared application state, handed to every request.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use super::{db::Db, session_store::DbSessionStore, throttle::LoginThrottle};

#[derive(Clone, Debug)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub sessions: DbSessionStore,
    pub login_throttle: Arc<LoginThrottle>,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy_headers: bool,
    /// How people reach Chancery, without a trailing slash: links in emails start with it.
    pub public_url: String,
}

impl AppState {
    pub fn new(leptos_options: LeptosOptions, db: Db, trust_proxy_headers: bool, public_url: String) -> Self {
        Self {
            leptos_options,
            sessions: DbSessionStore::new(db.clone()),
            db,
            login_throttle: Arc::default(),
            trust_proxy_headers,
            public_url,
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
