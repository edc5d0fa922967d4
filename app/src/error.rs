//! The one error type of the application layer.
//!
//! Domain functions return it, server functions hand it to the browser (it is
//! serializable), and the HTTP adapters map it once to a status code and the
//! `{"error": {"type", "code", "message"}}` body. Its messages are written for
//! the person who caused them; internal details only go to the log.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Bad input; `field` names the input at fault.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The input clashes with something that exists (a taken email, say).
    #[error("{message}")]
    Conflict { field: String, message: String },
    /// No valid session or credential, or credentials that do not match.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("You do not have permission to do this.")]
    Forbidden,
    /// Absent, or outside what the caller may see: the two are not told apart.
    #[error("Not found.")]
    NotFound,
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// The request itself could not be read or sent.
    #[error("{0}")]
    BadRequest(String),
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }

    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        Self::Conflict { field: field.into(), message: message.into() }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid { .. } | Self::BadRequest(_) => 400,
            Self::Unauthenticated(_) => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict { .. } => 409,
            Self::TooManyRequests { .. } => 429,
            Self::Internal => 500,
        }
    }

    /// Stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid_request",
            Self::Conflict { .. } => "conflict",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::BadRequest(_) => "bad_request",
            Self::Internal => "internal_error",
        }
    }

    /// The input field at fault, if any, so a form can point at it.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } | Self::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(err: ServerFnErrorErr) -> Self {
        match err {
            ServerFnErrorErr::ServerError(_) => Self::Internal,
            other => Self::BadRequest(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "database error");
        Self::Internal
    }
}

#[cfg(feature = "ssr")]
impl From<tower_sessions::session::Error> for AppError {
    fn from(err: tower_sessions::session::Error) -> Self {
        tracing::error!(error = %err, "session error");
        Self::Internal
    }
}

pub type AppResult<T> = Result<T, AppError>;
