//! SCIM 2.0 provisioning (RFC 7643/7644): an Organization's identity provider
//! creates, updates and deprovisions the Organization's people and the groups
//! it manages, holding a token an Admin made in Settings (`tokens`). The
//! protocol itself (JSON shapes, filters, PATCH) is the HTTP adapter's; these
//! modules own the rules:
//!
//! - `users`: a person the provider knows is *active* while a member of the
//!   Organization. Deprovisioning (`active: false`, or deletion) ends the
//!   membership as removing a member does: sessions, workspace API keys,
//!   groups (see `members::leave`). Accounts are global: the provider names
//!   and creates accounts only for addresses in the Organization's verified
//!   domains, or accounts it made itself; it never takes over another's.
//! - `groups`: groups the provider creates are marked managed; only it changes
//!   their name and members, while Admins decide what they grant.

pub mod groups;
pub mod tokens;
pub mod users;

use crate::error::{AppError, AppResult};

/// The most resources one list answers (`ServiceProviderConfig.filter.maxResults`).
pub const MAX_RESULTS: i64 = 200;

/// A page of a list: `start_index` from 1, at most `count` resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_index: i64,
    pub count: i64,
}

impl Window {
    /// RFC 7644 §3.4.2.4: a `startIndex` below 1 means 1, a negative `count`
    /// means 0; we also answer at most `MAX_RESULTS`.
    pub fn new(start_index: Option<i64>, count: Option<i64>) -> Self {
        Self {
            start_index: start_index.unwrap_or(1).max(1),
            count: count.unwrap_or(MAX_RESULTS).clamp(0, MAX_RESULTS),
        }
    }

    fn offset(self) -> i64 {
        self.start_index - 1
    }
}

/// A list's resources and how many match in all.
#[derive(Clone, Debug)]
pub struct Listed<T> {
    pub total: i64,
    pub resources: Vec<T>,
}

/// An optional, trimmed, non-empty identifier of the provider's own.
fn external_id(input: Option<&str>) -> AppResult<Option<String>> {
    let Some(id) = input.map(str::trim).filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    if id.chars().count() > 256 {
        return Err(AppError::invalid("externalId", "externalId must be at most 256 characters."));
    }
    Ok(Some(id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_clamped_as_the_rfc_says() {
        assert_eq!(Window::new(None, None), Window { start_index: 1, count: MAX_RESULTS });
        assert_eq!(Window::new(Some(0), Some(-5)), Window { start_index: 1, count: 0 });
        assert_eq!(Window::new(Some(3), Some(10_000)), Window { start_index: 3, count: MAX_RESULTS });
        assert_eq!(Window::new(Some(3), Some(2)).offset(), 2);
    }

    #[test]
    fn external_ids_are_trimmed_and_bounded() {
        assert_eq!(external_id(Some("  00u1  ")).unwrap(), Some("00u1".to_string()));
        assert_eq!(external_id(Some("  ")).unwrap(), None);
        assert!(external_id(Some(&"x".repeat(257))).is_err());
    }
}
