//! Who is acting, and from where: every domain function that changes state takes both.

use crate::ids::UserId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in person.
    User { id: UserId, email: String },
    /// The platform operator, through the command line.
    Operator,
}

impl Actor {
    /// Stored as `audit_events.actor_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User { .. } => "user",
            Self::Operator => "operator",
        }
    }

    pub fn id(&self) -> Option<String> {
        match self {
            Self::User { id, .. } => Some(id.to_string()),
            Self::Operator => None,
        }
    }

    /// Human-readable, kept with the event so it stays readable after the actor is gone.
    pub fn label(&self) -> String {
        match self {
            Self::User { email, .. } => email.clone(),
            Self::Operator => "platform operator".to_string(),
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::Operator => None,
        }
    }
}

/// Facts about the client behind a request, recorded with audit events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<String>,
}
