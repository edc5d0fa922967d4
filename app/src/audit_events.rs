//! The catalogue of audit event types: every `event_type` Chancery records, named
//! as Mistral's Admin API names them where Mistral has the event, and as
//! `resource[.sub].verb` in the same style where it does not. The docs page
//! publishes it; recording an event type missing here fails the tests.

/// One kind of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    /// What the target of such an event may be (`target_type`, upper case in the API).
    pub targets: &'static [&'static str],
    pub summary: &'static str,
    /// Also recorded by Mistral under this name.
    pub mistral: bool,
}

const fn mistral(name: &'static str, targets: &'static [&'static str], summary: &'static str) -> EventType {
    EventType { name, targets, summary, mistral: true }
}

const fn chancery(name: &'static str, targets: &'static [&'static str], summary: &'static str) -> EventType {
    EventType { name, targets, summary, mistral: false }
}

pub const EVENT_TYPES: &[EventType] = &[
    // People
    mistral("user.create", &["USER"], "An account was made: sign-up, invitation, SSO or SCIM."),
    mistral("user.log_in", &["USER"], "Someone signed in (`method`: password, oidc, saml)."),
    chancery("user.log_in_failed", &["USER"], "A sign-in was refused (`reason`)."),
    mistral("user.info.update", &["USER"], "An account's email address changed (`before`, `after`)."),
    mistral("user.password.update", &["USER"], "A password was changed or reset (`via`)."),
    chancery("user.password_reset_request", &["USER"], "Someone asked for a password reset link."),
    chancery("user.email.verify", &["USER"], "An account's email address was verified."),
    chancery("user.reclaim", &["USER"], "An account in a verified domain was taken back for its owner."),
    mistral("user.organization.join", &["USER"], "Someone became a member of the Organization."),
    mistral(
        "user.organization.delete",
        &["USER"],
        "A member was removed from the Organization (`roles` held).",
    ),
    mistral(
        "user.organization.role.update",
        &["USER"],
        "A member's Organization roles changed (`before`, `after`).",
    ),
    // Service accounts
    mistral(
        "service_account.create",
        &["SERVICE_ACCOUNT"],
        "A service account was made in a workspace (`name`, `role`).",
    ),
    mistral(
        "service_account.update",
        &["SERVICE_ACCOUNT"],
        "A service account's description changed (`before`, `after`).",
    ),
    mistral(
        "service_account.delete",
        &["SERVICE_ACCOUNT"],
        "A service account was deleted; its keys were revoked (`keys_revoked`).",
    ),
    mistral(
        "service_account.roles.set",
        &["SERVICE_ACCOUNT"],
        "A service account's workspace role changed (`before`, `after`).",
    ),
    // Invitations
    mistral("organization.invite.send", &["INVITATION"], "An invitation was sent (`email`, `roles`)."),
    mistral("organization.invite.resend", &["INVITATION"], "An invitation was sent again."),
    mistral("organization.invite.accepted", &["INVITATION"], "An invitation was accepted."),
    mistral("organization.invite.revoked", &["INVITATION"], "An invitation was revoked."),
    // The Organization
    mistral("organization.create", &["ORGANIZATION"], "The Organization was created."),
    mistral("organization.update", &["ORGANIZATION"], "The Organization's name changed (`before`, `after`)."),
    chancery("organization.link", &["ORGANIZATION"], "The Organization was linked to an Enterprise Account."),
    chancery(
        "organization.allowed_domains.update",
        &["ORGANIZATION"],
        "Sign-up and invitation domains changed.",
    ),
    chancery("organization.domain_claim", &["DOMAIN"], "A domain was claimed; it awaits its DNS proof."),
    chancery("organization.domain_verify", &["DOMAIN"], "A domain was verified."),
    chancery("organization.domain_remove", &["DOMAIN"], "A domain was removed."),
    chancery("organization.sso_enforce", &["ORGANIZATION"], "Single sign-on was made the only way in."),
    chancery("organization.sso_unenforce", &["ORGANIZATION"], "Passwords were allowed again."),
    chancery(
        "organization.oidc_update",
        &["ORGANIZATION"],
        "The OpenID Connect provider was set or changed.",
    ),
    chancery("organization.oidc_remove", &["ORGANIZATION"], "The OpenID Connect provider was removed."),
    chancery(
        "organization.oidc_login_refused",
        &["ORGANIZATION"],
        "An OpenID Connect sign-in was refused (`reason`).",
    ),
    chancery("organization.oidc_member_join", &["USER"], "Someone joined through OpenID Connect."),
    chancery("organization.saml_update", &["ORGANIZATION"], "The SAML identity provider was set or changed."),
    chancery("organization.saml_remove", &["ORGANIZATION"], "The SAML identity provider was removed."),
    chancery("organization.saml_login_refused", &["ORGANIZATION"], "A SAML sign-in was refused (`reason`)."),
    chancery("organization.saml_member_join", &["USER"], "Someone joined through SAML."),
    // Provisioning
    chancery("scim_token.create", &["SCIM_TOKEN"], "A SCIM token was made."),
    chancery("scim_token.revoke", &["SCIM_TOKEN"], "A SCIM token was revoked."),
    chancery("scim_user.create", &["USER"], "The identity provider provisioned someone."),
    chancery("scim_user.update", &["USER"], "The identity provider changed someone's attributes."),
    chancery("scim_user.delete", &["USER"], "The identity provider deleted someone."),
    // Workspaces
    mistral("workspace.create", &["WORKSPACE"], "A workspace was created."),
    mistral("workspace.update", &["WORKSPACE"], "A workspace's name, description or icon changed."),
    mistral("workspace.delete", &["WORKSPACE"], "A workspace was archived (its keys stop working)."),
    chancery(
        "workspace.restore",
        &["WORKSPACE"],
        "An archived workspace was restored (its keys work again).",
    ),
    mistral("workspace.member.add", &["USER"], "Someone was added to a workspace (`workspace_id`, `after`)."),
    mistral(
        "workspace.member.role.update",
        &["USER"],
        "A workspace member's role changed (`before`, `after`).",
    ),
    mistral("workspace.member.remove", &["USER"], "Someone was removed from a workspace."),
    // Groups
    mistral("user_group.create", &["USER_GROUP"], "A group was created."),
    mistral("user_group.update", &["USER_GROUP"], "A group was renamed or described."),
    mistral("user_group.delete", &["USER_GROUP"], "A group was deleted."),
    mistral("user_group.member.add", &["USER"], "Someone was added to a group."),
    mistral("user_group.member.remove", &["USER"], "Someone was removed from a group."),
    mistral("user_group.workspace.provision", &["USER_GROUP"], "A group was given a role in a workspace."),
    mistral("user_group.workspace.update", &["USER_GROUP"], "A group's role in a workspace changed."),
    mistral("user_group.workspace.deprovision", &["USER_GROUP"], "A group lost its role in a workspace."),
    // Billing and limits
    mistral(
        "billing.payment_method.added",
        &["PAYMENT_METHOD"],
        "A payment method was added (billing active).",
    ),
    mistral(
        "billing.payment_method.removed",
        &["PAYMENT_METHOD"],
        "The payment method was removed (billing inactive).",
    ),
    mistral(
        "billing.monthly_limit.updated",
        &["MONTHLY_LIMIT"],
        "The Organization's monthly spending limit changed.",
    ),
    mistral(
        "billing.workspace_monthly_limit.updated",
        &["WORKSPACE_MONTHLY_LIMIT"],
        "A workspace's monthly budget changed.",
    ),
    mistral(
        "rate_limit.rule.update",
        &["WORKSPACE"],
        "A workspace's rate limit or model allow-list changed.",
    ),
    chancery(
        "billing.spend_alert",
        &["WORKSPACE", "ORGANIZATION"],
        "Spending reached 80% or 100% of a monthly limit; Admins and Billing were emailed.",
    ),
    chancery(
        "gateway.overrun",
        &["API_KEY"],
        "A request cost more than its hold could foresee (booked in full).",
    ),
    // Keys
    mistral("api_key.create", &["API_KEY"], "A workspace API key was made."),
    mistral("api_key.rotate", &["API_KEY"], "A workspace API key was rotated."),
    mistral("api_key.delete", &["API_KEY"], "A workspace API key was revoked."),
    mistral(
        "api_key_policy.update",
        &["ORGANIZATION", "WORKSPACE"],
        "The longest workspace API keys may live changed (`before`, `after`).",
    ),
    mistral("admin_api_key.created", &["ADMIN_API_KEY"], "An Admin API key was made in the Backoffice."),
    mistral("admin_api_key.delete", &["ADMIN_API_KEY"], "An Admin API key was revoked."),
    // Enterprise Account and platform
    chancery(
        "enterprise_account.create",
        &["ENTERPRISE_ACCOUNT"],
        "The operator created an Enterprise Account.",
    ),
    chancery("enterprise_account.member.add", &["USER"], "Someone was added to an Enterprise Account."),
    chancery("enterprise_account.member.accept", &["USER"], "Someone accepted an Enterprise Account seat."),
    chancery("enterprise_account.member.remove", &["USER"], "Someone left an Enterprise Account."),
    chancery("model.price.update", &["MODEL"], "The operator changed a model's prices."),
];

/// Names Chancery recorded before it took Mistral's: `(old, new)`. Old events are
/// read under their new name, and a filter on either name finds both.
pub const RENAMED: &[(&str, &str)] = &[
    ("admin_api_key.create", "admin_api_key.created"),
    ("admin_api_key.revoke", "admin_api_key.delete"),
    ("billing.monthly_limit.update", "billing.monthly_limit.updated"),
    ("billing.payment_method.update", "billing.payment_method.added"),
    ("billing.payment_method.delete", "billing.payment_method.removed"),
    ("workspace.archive", "workspace.delete"),
    ("workspace.member.update", "workspace.member.role.update"),
    ("workspace.monthly_limit.update", "billing.workspace_monthly_limit.updated"),
    ("workspace.rate_limit.update", "rate_limit.rule.update"),
    ("user.email.update", "user.info.update"),
    ("user.password_change", "user.password.update"),
    ("user.password_reset", "user.password.update"),
    ("user.email_verify", "user.email.verify"),
];

/// The catalogue entry of `name`, if Chancery records it.
pub fn find(name: &str) -> Option<&'static EventType> {
    EVENT_TYPES.iter().find(|event| event.name == name)
}

/// The name an event recorded as `stored` goes by now.
pub fn current_name(stored: &str) -> &str {
    RENAMED.iter().find(|(old, _)| *old == stored).map_or(stored, |(_, new)| new)
}

/// Every name an event called `name` may be stored under: itself and its old names.
pub fn stored_names(name: &str) -> Vec<&str> {
    let name = current_name(name);
    std::iter::once(name).chain(RENAMED.iter().filter(|(_, new)| *new == name).map(|(old, _)| *old)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once_and_shaped_resource_verb() {
        for (i, event) in EVENT_TYPES.iter().enumerate() {
            assert!(!EVENT_TYPES[..i].iter().any(|e| e.name == event.name), "{} twice", event.name);
            assert!(event.name.contains('.'), "{}", event.name);
            assert!(
                event.name.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{}",
                event.name
            );
            for target in event.targets {
                assert!(target.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{target}");
            }
        }
    }

    #[test]
    fn old_names_read_as_new_ones_and_filters_find_both() {
        for (old, new) in RENAMED {
            assert!(find(new).is_some(), "{new} is not in the catalogue");
            assert!(find(old).is_none(), "{old} is still recorded");
        }
        assert_eq!(current_name("workspace.archive"), "workspace.delete");
        assert_eq!(current_name("workspace.delete"), "workspace.delete");
        assert_eq!(
            stored_names("user.password.update"),
            ["user.password.update", "user.password_change", "user.password_reset"]
        );
        assert_eq!(stored_names("workspace.archive"), ["workspace.delete", "workspace.archive"]);
        assert_eq!(stored_names("user.log_in"), ["user.log_in"]);
    }
}
