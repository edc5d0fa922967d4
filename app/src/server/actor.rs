//! Who is acting, and from where: every domain function that changes state takes both.

use crate::ids::{AdminKeyId, OrgId, ScimTokenId, UserId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in person.
    User { id: UserId, email: String },
    /// A machine holding an Admin API key; it administers one Organization.
    AdminApiKey { id: AdminKeyId, org_id: OrgId, name: String },
    /// An Organization's identity provider holding a SCIM token: it provisions
    /// and deprovisions the Organization's people and groups.
    ScimToken { id: ScimTokenId, org_id: OrgId, name: String },
    /// The platform operator, through the command line.
    Operator,
    /// Someone not (yet) signed in, e.g. a refused single sign-on; `claimed`
    /// is who they said they were, unproven.
    Unauthenticated { claimed: String },
}

impl Actor {
    /// Stored as `audit_events.actor_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User { .. } => "user",
            Self::AdminApiKey { .. } => "admin_api_key",
            Self::ScimToken { .. } => "scim_token",
            Self::Operator => "operator",
            Self::Unauthenticated { .. } => "unauthenticated",
        }
    }

    pub fn id(&self) -> Option<String> {
        match self {
            Self::User { id, .. } => Some(id.to_string()),
            Self::AdminApiKey { id, .. } => Some(id.to_string()),
            Self::ScimToken { id, .. } => Some(id.to_string()),
            Self::Operator | Self::Unauthenticated { .. } => None,
        }
    }

    /// Human-readable, kept with the event so it stays readable after the actor is gone.
    pub fn label(&self) -> String {
        match self {
            Self::User { email, .. } => email.clone(),
            Self::AdminApiKey { name, .. } => format!("Admin API key {name}"),
            Self::ScimToken { name, .. } => format!("SCIM token {name}"),
            Self::Operator => "platform operator".to_string(),
            Self::Unauthenticated { claimed } if claimed.is_empty() => "someone signing in".to_string(),
            Self::Unauthenticated { claimed } => format!("someone signing in as {claimed}"),
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
            Self::AdminApiKey { .. }
            | Self::ScimToken { .. }
            | Self::Operator
            | Self::Unauthenticated { .. } => None,
        }
    }
}

/// Facts about the client behind a request, recorded with audit events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<String>,
}

impl Client {
    /// The client address: the socket peer, or, behind `trusted_proxies`
    /// proxies of the operator's, the address the outermost of them saw (see
    /// `forwarded_client`).
    pub fn of_request(parts: &http::request::Parts, trusted_proxies: u8) -> Self {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        let forwarded: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let ip = forwarded_client(&forwarded, trusted_proxies).or(peer);
        Self { ip: ip.map(|ip| ip.to_string()) }
    }
}

/// The client behind `trusted_proxies` proxies, from their `X-Forwarded-For`
/// headers. Each proxy appends the address it was called from, so only the
/// right-most `trusted_proxies` entries were written by proxies we trust: the
/// last of those is the client. Anything left of it is whatever the client
/// chose to send, and is never believed. `None`: trust no header (no proxies,
/// or an entry that is not an address).
pub fn forwarded_client(headers: &[&str], trusted_proxies: u8) -> Option<std::net::IpAddr> {
    if trusted_proxies == 0 {
        return None;
    }
    let hops: Vec<&str> =
        headers.iter().flat_map(|h| h.split(',')).map(str::trim).filter(|h| !h.is_empty()).collect();
    // Fewer entries than proxies: the request skipped one; the left-most is the farthest we know.
    let index = hops.len().saturating_sub(usize::from(trusted_proxies));
    hops.get(index)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::forwarded_client;

    #[test]
    fn only_the_entries_our_proxies_wrote_are_believed() {
        let ip = |s: &str| Some(s.parse().unwrap());
        assert_eq!(forwarded_client(&["203.0.113.9"], 0), None, "no proxy: the socket peer");
        assert_eq!(forwarded_client(&["203.0.113.9"], 1), ip("203.0.113.9"));
        // A client forging the header only adds entries to the left of the real one.
        assert_eq!(forwarded_client(&["6.6.6.6, 203.0.113.9"], 1), ip("203.0.113.9"));
        assert_eq!(forwarded_client(&["6.6.6.6", "203.0.113.9"], 1), ip("203.0.113.9"), "several headers");
        assert_eq!(forwarded_client(&["6.6.6.6, 203.0.113.9, 10.0.0.2"], 2), ip("203.0.113.9"));
        assert_eq!(forwarded_client(&["203.0.113.9"], 3), ip("203.0.113.9"), "fewer hops than proxies");
        assert_eq!(forwarded_client(&["6.6.6.6, not-an-ip"], 1), None);
        assert_eq!(forwarded_client(&[], 1), None);
    }
}
