//! Input rules, shared by the browser (early hints) and the server (the rule).
//! Each returns the cleaned value or an error naming the field.

use crate::error::AppError;

pub const PASSWORD_MIN_CHARS: usize = 12;
/// Bounds argon2's work per attempt.
pub const PASSWORD_MAX_CHARS: usize = 256;
pub const NAME_MAX_CHARS: usize = 100;
const EMAIL_MAX_CHARS: usize = 254;

/// A person's display name: trimmed, 1 to 100 characters.
pub fn person_name(input: &str) -> Result<String, AppError> {
    named_text("name", "Name", input)
}

/// An organization or workspace name: trimmed, 1 to 100 characters.
pub fn org_name(input: &str) -> Result<String, AppError> {
    named_text("name", "Organization name", input)
}

/// A name for an Enterprise Account or an API key: trimmed, 1 to 100 characters.
pub fn label(field: &str, what: &str, input: &str) -> Result<String, AppError> {
    named_text(field, what, input)
}

fn named_text(field: &str, what: &str, input: &str) -> Result<String, AppError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(AppError::invalid(field, format!("{what} is required.")));
    }
    // Counted as sent, surrounding spaces included: the limit the API documents.
    if input.chars().count() > NAME_MAX_CHARS {
        return Err(AppError::invalid(field, format!("{what} must be at most {NAME_MAX_CHARS} characters.")));
    }
    if input.chars().any(char::is_control) {
        return Err(AppError::invalid(field, format!("{what} cannot contain control characters.")));
    }
    Ok(text.to_string())
}

/// An email address as typed (trimmed), and its lower-cased form, the key that
/// makes addresses unique regardless of case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub display: String,
    pub normalized: String,
}

impl Email {
    /// What follows the `@`, lower-cased.
    pub fn domain(&self) -> &str {
        self.normalized.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

pub fn email(input: &str) -> Result<Email, AppError> {
    let display = input.trim();
    let invalid = || AppError::invalid("email", "Enter a valid email address, like name@example.com.");
    if display.is_empty() {
        return Err(AppError::invalid("email", "Email is required."));
    }
    if display.len() > EMAIL_MAX_CHARS || display.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = display.split_once('@').ok_or_else(invalid)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(invalid());
    }
    Ok(Email { display: display.to_string(), normalized: display.to_lowercase() })
}

/// A key's optional expiration date, `YYYY-MM-DD` (as date inputs send it). The key
/// works through that whole day (UTC) and stops at the next midnight. Past dates are refused.
pub fn expiry_date(
    input: &str,
    today: chrono::NaiveDate,
) -> Result<Option<crate::time::Timestamp>, AppError> {
    let input = input.trim();
    if input.is_empty() {
        return Ok(None);
    }
    let date = chrono::NaiveDate::parse_from_str(input, "%Y-%m-%d")
        .map_err(|_| AppError::invalid("expires_on", "Enter the expiration date as YYYY-MM-DD."))?;
    if date < today {
        return Err(AppError::invalid("expires_on", "The expiration date must be today or later."));
    }
    let end_of_day = date.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
    let end_of_day =
        end_of_day.ok_or_else(|| AppError::invalid("expires_on", "That date is too far away."))?;
    Ok(Some(crate::time::Timestamp(end_of_day.timestamp_millis())))
}

/// Model ids typed into one field, separated by commas or spaces; `None` when
/// there are none (the field was left empty).
pub fn model_list(input: &str) -> Option<Vec<String>> {
    let models: Vec<String> = input
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect();
    (!models.is_empty()).then_some(models)
}

/// A limit typed into a field: a whole number (thousands may be separated by
/// commas, spaces or underscores), or empty for none.
pub fn optional_count(field: &str, input: &str) -> Result<Option<i64>, AppError> {
    let text = input.trim().replace([',', '_', ' '], "");
    match text.as_str() {
        "" => Ok(None),
        text => text
            .parse()
            .map(Some)
            .map_err(|_| AppError::invalid(field, "Enter a whole number, or leave it empty for no limit.")),
    }
}

/// A role the Admin API names by UUID, by API name, by short name or by legacy code.
pub trait NamedRole: Copy + PartialEq + 'static {
    const ALL: &'static [Self];
    fn uuid(self) -> uuid::Uuid;
    fn api_name(self) -> &'static str;
    fn as_str(self) -> &'static str;
}

impl NamedRole for crate::model::OrgRole {
    const ALL: &'static [Self] = &crate::model::OrgRole::ALL;
    fn uuid(self) -> uuid::Uuid {
        self.uuid()
    }
    fn api_name(self) -> &'static str {
        self.api_name()
    }
    fn as_str(self) -> &'static str {
        self.as_str()
    }
}

impl NamedRole for crate::model::WorkspaceRole {
    const ALL: &'static [Self] = &crate::model::WorkspaceRole::ALL;
    fn uuid(self) -> uuid::Uuid {
        self.uuid()
    }
    fn api_name(self) -> &'static str {
        self.api_name()
    }
    fn as_str(self) -> &'static str {
        self.as_str()
    }
}

/// Roles given as `roles` (UUIDs) or `role_names`, never both; the deprecated
/// singular `role` / `role_name` too. `None` when none were given. Names may be
/// the API's (`organization_admin`) or the short ones (`admin`); both kinds take
/// Mistral's legacy codes (`A`, `B`, `M`).
fn role_selection<R: NamedRole>(
    roles: Option<Vec<String>>,
    role_names: Option<Vec<String>>,
    role: Option<String>,
    role_name: Option<String>,
) -> Result<Option<Vec<R>>, AppError> {
    let by_uuid = roles.or(role.map(|r| vec![r]));
    let by_name = role_names.or(role_name.map(|r| vec![r]));
    let legacy_code = |r: R, text: &str| text == r.as_str()[..1].to_uppercase();
    let find = |field: &str, text: &str, matches: &dyn Fn(R, &str) -> bool| {
        let text = text.trim();
        R::ALL
            .iter()
            .copied()
            .find(|r| matches(*r, text) || legacy_code(*r, text))
            .ok_or_else(|| AppError::invalid(field, format!("Unknown role {text}.")))
    };
    match (by_uuid, by_name) {
        (Some(_), Some(_)) => {
            Err(AppError::invalid("roles", "Give either roles (UUIDs) or role_names, not both."))
        }
        (None, None) => Ok(None),
        (Some(uuids), None) => uuids
            .iter()
            .map(|u| find("roles", u, &|r, t| r.uuid().to_string().eq_ignore_ascii_case(t)))
            .collect::<Result<_, _>>()
            .map(Some),
        (None, Some(names)) => names
            .iter()
            .map(|n| {
                find("role_names", n, &|r, t| {
                    t.eq_ignore_ascii_case(r.api_name()) || t.eq_ignore_ascii_case(r.as_str())
                })
            })
            .collect::<Result<_, _>>()
            .map(Some),
    }
}

/// Organization roles for the Admin API: at least one is required.
pub fn org_role_selection(
    roles: Option<Vec<String>>,
    role_names: Option<Vec<String>>,
    role: Option<String>,
    role_name: Option<String>,
) -> Result<Vec<crate::model::OrgRole>, AppError> {
    match role_selection(roles, role_names, role, role_name)? {
        Some(parsed) if !parsed.is_empty() => Ok(parsed),
        _ => Err(AppError::invalid("role_names", "Give at least one role.")),
    }
}

/// A workspace role (Member when none is given). A member holds one role in a
/// workspace, so several collapse to the strongest.
pub fn workspace_role_selection(
    roles: Option<Vec<String>>,
    role_names: Option<Vec<String>>,
    role: Option<String>,
    role_name: Option<String>,
) -> Result<crate::model::WorkspaceRole, AppError> {
    use crate::model::WorkspaceRole;
    let parsed: Vec<WorkspaceRole> = role_selection(roles, role_names, role, role_name)?.unwrap_or_default();
    Ok(if parsed.contains(&WorkspaceRole::Admin) { WorkspaceRole::Admin } else { WorkspaceRole::Member })
}

/// A new password: 12 to 256 characters. Spaces count; nothing is trimmed.
/// Where to go back to after logging in: a path of this site only (no other
/// host, no scheme), so a link cannot send people elsewhere once signed in.
pub fn local_path(input: &str) -> Option<String> {
    let path = input.trim();
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && path.len() <= 2048
        && !path.chars().any(char::is_control);
    local.then(|| path.to_string())
}

/// A password being chosen, in form field `field`.
pub fn new_password(field: &str, input: &str) -> Result<(), AppError> {
    let chars = input.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(AppError::invalid(
            field,
            format!("Password must be at least {PASSWORD_MIN_CHARS} characters."),
        ));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(AppError::invalid(
            field,
            format!("Password must be at most {PASSWORD_MAX_CHARS} characters."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_gone_back_to() {
        assert_eq!(local_path("/admin/usage?range=30d").as_deref(), Some("/admin/usage?range=30d"));
        for elsewhere in [
            "https://evil.test/",
            "//evil.test/x",
            "/\\evil.test",
            "evil",
            "",
            "/a\nb",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_path(elsewhere), None, "{elsewhere:?}");
        }
    }

    #[test]
    fn email_is_trimmed_and_normalized_to_lower_case() {
        let e = email("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.display, "Ada.Lovelace@Example.COM");
        assert_eq!(e.normalized, "ada.lovelace@example.com");
    }

    #[test]
    fn malformed_emails_are_refused_naming_the_field() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
            "ada@exa_mple.com",
            "ada@-x.com",
        ] {
            let err = email(bad).unwrap_err();
            assert_eq!(err.field(), Some("email"), "{bad:?} should be refused");
        }
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert_eq!(new_password("password", "short-pass1").unwrap_err().field(), Some("password"));
        assert!(new_password("password", "twelve chars").is_ok());
        assert!(new_password("password", &"x".repeat(257)).is_err());
    }

    #[test]
    fn expiry_dates_run_through_the_day_and_never_lie_in_the_past() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(expiry_date("", today).unwrap(), None);
        let end = expiry_date("2026-11-23", today).unwrap().unwrap();
        assert_eq!(end.rfc3339(), "2026-11-24T00:00:00.000Z");
        assert_eq!(expiry_date("2026-11-22", today).unwrap_err().field(), Some("expires_on"));
        assert_eq!(expiry_date("23/11/2026", today).unwrap_err().field(), Some("expires_on"));
    }

    #[test]
    fn roles_come_by_uuid_or_by_name_never_both() {
        use crate::model::OrgRole;
        let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            org_role_selection(None, names(&["organization_admin", "billing"]), None, None).unwrap(),
            [OrgRole::Admin, OrgRole::Billing]
        );
        let uuid = OrgRole::Member.uuid().to_string();
        assert_eq!(org_role_selection(names(&[&uuid]), None, None, None).unwrap(), [OrgRole::Member]);
        assert_eq!(
            org_role_selection(None, None, None, Some("M".into())).unwrap(),
            [OrgRole::Member],
            "legacy"
        );
        assert_eq!(
            org_role_selection(None, None, Some(uuid.clone()), None).unwrap(),
            [OrgRole::Member],
            "deprecated"
        );
        assert_eq!(
            org_role_selection(names(&[&uuid]), names(&["member"]), None, None).unwrap_err().field(),
            Some("roles")
        );
        assert_eq!(
            org_role_selection(None, names(&["owner"]), None, None).unwrap_err().field(),
            Some("role_names")
        );
        assert!(org_role_selection(None, None, None, None).is_err());
        assert!(org_role_selection(None, names(&[]), None, None).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(person_name("  Ada  ").unwrap(), "Ada");
        assert!(person_name("   ").is_err());
        assert!(org_name(&"x".repeat(101)).is_err());
        assert!(org_name("Acme\u{0007}").is_err());
    }
}
