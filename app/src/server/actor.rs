//! Who is acting, and from where: every domain function that changes state takes both.

use crate::ids::{AdminKeyId, OrgId, UserId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in person.
    User { id: UserId, email: String },
    /// A machine holding an Admin API key; it administers one Organization.
    AdminApiKey { id: AdminKeyId, org_id: OrgId, name: String },
    /// The platform operator, through the command line.
    Operator,
}

impl Actor {
    /// Stored as `audit_events.actor_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User { .. } => "user",
            Self::AdminApiKey { .. } => "admin_api_key",
            Self::Operator => "operator",
        }
    }

    pub fn id(&self) -> Option<String> {
        match self {
            Self::User { id, .. } => Some(id.to_string()),
            Self::AdminApiKey { id, .. } => Some(id.to_string()),
            Self::Operator => None,
        }
    }

    /// Human-readable, kept with the event so it stays readable after the actor is gone.
    pub fn label(&self) -> String {
        match self {
            Self::User { email, .. } => email.clone(),
            Self::AdminApiKey { name, .. } => format!("Admin API key {name}"),
            Self::Operator => "platform operator".to_string(),
        }
    }

    /// The one organization an Admin API key administers.
    pub fn key_org(&self) -> Option<OrgId> {
        match self {
            Self::AdminApiKey { org_id, .. } => Some(*org_id),
            _ => None,
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::AdminApiKey { .. } | Self::Operator => None,
        }
    }
}

/// Facts about the client behind a request, recorded with audit events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<String>,
}

impl Client {
    /// The client address: the socket peer, or the first `X-Forwarded-For` hop
    /// when the operator said a trusted proxy sits in front.
    pub fn of_request(parts: &http::request::Parts, trust_proxy_headers: bool) -> Self {
        let forwarded = trust_proxy_headers
            .then(|| parts.headers.get("x-forwarded-for")?.to_str().ok()?.split(',').next().map(str::trim))
            .flatten()
            .filter(|ip| !ip.is_empty())
            .map(str::to_string);
        let peer = || {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip().to_string())
        };
        Self { ip: forwarded.or_else(peer) }
    }
}
