//! Shared application state, handed to every request.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::model::SignUpPolicy;

use super::{
    db::Db,
    dns::Dns,
    gateway::{Gateway, Upstream},
    sealed::SealingKey,
    session_store::DbSessionStore,
    throttle::Throttle,
};

/// Shared application state, handed to every request. axum clones it for each
/// handler and middleware that asks for it, so it is one `Arc`: a clone costs a
/// reference count, not a copy of every field. Its fields are read through it
/// (`state.db`); the `with_*` builders set them before it is shared.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares.
#[derive(Clone, Debug)]
pub struct Shared {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub sessions: DbSessionStore,
    pub throttle: Arc<Throttle>,
    /// How many proxies of the operator's stand in front: `X-Forwarded-For` entries they wrote are believed.
    pub trusted_proxies: u8,
    /// How people reach Chancery, without a trailing slash: links in emails start with it.
    pub public_url: String,
    pub gateway: Arc<Gateway>,
    /// Where the gateway forwards model calls; `None`: the built-in mock provider.
    pub upstream: Option<Upstream>,
    /// Looks up verified domains' TXT records; `None` when this machine has no resolver.
    pub dns: Option<Dns>,
    /// Seals the secrets Chancery must read back (identity providers' client secrets).
    pub sealing: SealingKey,
    /// Who may create an account on their own.
    pub sign_up: SignUpPolicy,
    /// The public half of the operator's audit checkpoint key: checkpoints are verified with it.
    pub audit_key: Option<ed25519_dalek::VerifyingKey>,
}

impl AppState {
    pub fn new(
        leptos_options: LeptosOptions,
        db: Db,
        gateway: Arc<Gateway>,
        trusted_proxies: u8,
        public_url: String,
        sealing: SealingKey,
    ) -> Self {
        Self(Arc::new(Shared {
            leptos_options,
            sessions: DbSessionStore::new(db.clone()),
            db,
            throttle: Arc::default(),
            trusted_proxies,
            public_url,
            gateway,
            upstream: None,
            dns: None,
            sealing,
            sign_up: SignUpPolicy::Open,
            audit_key: None,
        }))
    }

    /// The fields, to set before the state is shared (a shared one is copied first).
    pub fn set(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }

    /// Looks up domains' TXT records with `dns`.
    pub fn with_dns(mut self, dns: Option<Dns>) -> Self {
        self.set().dns = dns;
        self
    }

    /// Lets people create accounts on their own as `policy` says.
    pub fn with_sign_up_policy(mut self, policy: SignUpPolicy) -> Self {
        self.set().sign_up = policy;
        self
    }

    /// Verifies audit checkpoints with the operator's `key`.
    pub fn with_audit_key(mut self, key: Option<ed25519_dalek::VerifyingKey>) -> Self {
        self.set().audit_key = key;
        self
    }

    /// Forwards model calls to an OpenAI-compatible API instead of the mock provider.
    pub fn with_upstream(mut self, upstream: Option<Upstream>) -> Self {
        self.set().upstream = upstream;
        self
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
