//! Data shared by the server and the browser: roles and the views pages show.

use serde::{Deserialize, Serialize};

use crate::{
    ids::{
        AdminKeyId, ApiKeyId, EnterpriseId, GroupId, OrgId, ScimTokenId, ServiceAccountId, UserId,
        WorkspaceId,
    },
    time::Timestamp,
};

/// Organization roles. A member may hold several; permissions add up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    Admin,
    Billing,
    Member,
}

impl OrgRole {
    pub const ALL: [OrgRole; 3] = [OrgRole::Admin, OrgRole::Billing, OrgRole::Member];

    /// The name stored in the database and used by the Admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Billing => "billing",
            Self::Member => "member",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Admin => "Admin",
            Self::Billing => "Billing",
            Self::Member => "Member",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Fixed, so automation can hard-code them (`GET /api/admin/roles` lists them).
    pub fn uuid(self) -> uuid::Uuid {
        uuid::Uuid::from_u128(match self {
            Self::Admin => 0x6a1d2c3e_0001_4a00_8000_000000000001,
            Self::Billing => 0x6a1d2c3e_0001_4a00_8000_000000000002,
            Self::Member => 0x6a1d2c3e_0001_4a00_8000_000000000003,
        })
    }

    /// The Admin API's name for the role, as Mistral's API spells it.
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Admin => "organization_admin",
            Self::Billing => "billing_manager",
            Self::Member => "member",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Admin => "Manages members, workspaces, keys, billing, limits and settings.",
            Self::Billing => "Sees and manages billing, spending limits and usage.",
            Self::Member => "Uses the workspaces they belong to.",
        }
    }
}

/// Roles inside one workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceRole {
    Admin,
    Member,
}

impl WorkspaceRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub const ALL: [WorkspaceRole; 2] = [WorkspaceRole::Admin, WorkspaceRole::Member];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Admin => "Admin",
            Self::Member => "Member",
        }
    }

    /// The role someone holds in a workspace through several grants (direct and
    /// through groups): permissions add up, so any Admin grant makes them Admin.
    pub fn union(grants: impl IntoIterator<Item = WorkspaceRole>) -> Option<WorkspaceRole> {
        grants.into_iter().reduce(|a, b| {
            if a == Self::Admin || b == Self::Admin {
                Self::Admin
            } else {
                Self::Member
            }
        })
    }

    pub fn uuid(self) -> uuid::Uuid {
        uuid::Uuid::from_u128(match self {
            Self::Admin => 0x6a1d2c3e_0002_4a00_8000_000000000001,
            Self::Member => 0x6a1d2c3e_0002_4a00_8000_000000000002,
        })
    }

    pub fn api_name(self) -> &'static str {
        match self {
            Self::Admin => "workspace_admin",
            Self::Member => "workspace_member",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Admin => "Manages the workspace's members, API keys and limits.",
            Self::Member => "Uses the workspace and creates their own API keys.",
        }
    }
}

/// The signed-in person, as pages see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: UserId,
    pub name: String,
    pub email: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub id: OrgId,
    pub name: String,
    /// The viewer's roles in this organization.
    pub roles: Vec<OrgRole>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceSummary {
    pub id: WorkspaceId,
    pub name: String,
    pub description: String,
    pub icon: String,
    pub is_default: bool,
    pub member_count: i64,
    /// Archived: kept with its history, its keys refused, restorable by an Admin.
    pub archived: bool,
}

/// What the Admin Panel's home shows: one organization and the workspaces the viewer may see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminOverview {
    pub user: CurrentUser,
    pub org: OrgSummary,
    pub workspaces: Vec<WorkspaceSummary>,
    /// The viewer's other organizations, which the Admin Panel offers to switch to.
    pub other_orgs: Vec<OrgSummary>,
    /// The viewer administers an Enterprise Account: offer the Backoffice.
    pub backoffice_access: bool,
    /// The viewer proved their address (see `server::recovery`); if not, the panel asks them to.
    pub email_verified: bool,
}

/// Who may create an account on their own (`CHANCERY_SIGNUP`, set by the
/// operator). Invitations and single sign-on make accounts whatever it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignUpPolicy {
    /// Anyone (the embedded demo's default).
    #[default]
    Open,
    /// Nobody: people join by invitation (or their organization's single sign-on).
    InviteOnly,
    /// People whose email is in one of these domains.
    Domains(Vec<String>),
}

impl SignUpPolicy {
    /// What people are told where accounts are made by invitation only.
    pub const INVITE_ONLY: &'static str =
        "Accounts here are made by invitation: ask an Admin of your organization to invite you.";
}

impl std::str::FromStr for SignUpPolicy {
    type Err = String;

    /// `open`, `invite-only`, or `domains:<domain>,<domain>...`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "open" => Ok(Self::Open),
            "invite-only" => Ok(Self::InviteOnly),
            other => {
                let list = other.strip_prefix("domains:").ok_or_else(|| {
                    format!("{other:?}: expected open, invite-only or domains:<domain>,<domain>...")
                })?;
                let domains: Vec<String> = list
                    .split(',')
                    .map(|domain| domain.trim().trim_start_matches('@').to_ascii_lowercase())
                    .filter(|domain| !domain.is_empty())
                    .collect();
                if domains.is_empty()
                    || domains.iter().any(|d| !d.contains('.') || d.contains(char::is_whitespace))
                {
                    return Err(format!(
                        "{other:?}: name one or more domains, e.g. domains:example.com,example.org"
                    ));
                }
                Ok(Self::Domains(domains))
            }
        }
    }
}

/// Where a signed-in person belongs next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Landing {
    /// Not signed in.
    LogIn,
    /// Signed in, but in no organization yet: name the first one.
    NameOrganization(CurrentUser),
    AdminPanel(CurrentUser),
}

impl Landing {
    pub fn path(&self) -> &'static str {
        match self {
            Self::LogIn => "/login",
            Self::NameOrganization(_) => "/onboarding",
            Self::AdminPanel(_) => "/admin",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseSummary {
    pub id: EnterpriseId,
    pub name: String,
}

/// The Backoffice's entry: the viewer's Enterprise Account, and invitations waiting for them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackofficeHome {
    pub user: CurrentUser,
    pub enterprise: Option<EnterpriseSummary>,
    pub invitations: Vec<EnterpriseSummary>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseMember {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    /// Linked Organizations this person belongs to.
    pub organizations: Vec<String>,
    pub last_login_at: Option<Timestamp>,
    /// "Invite pending" until they accept.
    pub pending: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseOrg {
    pub id: OrgId,
    pub name: String,
    pub member_count: i64,
    /// Whether the viewer is an Admin of it (else "Promote to admin" is offered).
    pub viewer_is_admin: bool,
}

/// A domain an Organization claimed, and how to verify it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainView {
    pub domain: String,
    /// Where the TXT record goes, and what it must say.
    pub record_name: String,
    pub record_value: String,
    pub claimed_at: Timestamp,
    pub verified_at: Option<Timestamp>,
    /// `dns` or `operator`.
    pub verified_by: Option<String>,
}

/// An Organization's OpenID Connect provider as Settings shows it: never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    /// The role of people their first log-in makes members; `None`: nobody is made a member at log-in.
    pub default_role: Option<OrgRole>,
    pub groups_claim: String,
    pub enabled: bool,
    pub updated_at: Timestamp,
}

/// The Settings page's single sign-on panel: the provider, if any, and the
/// address to register with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcPanel {
    pub settings: Option<OidcSettings>,
    pub redirect_uri: String,
}

/// One of a SAML identity provider's signing certificates, as Settings shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateView {
    pub subject: String,
    pub not_after: String,
    /// SHA-256 of the DER, colon-separated hex, to compare with the IdP's console.
    pub sha256: String,
}

/// An Organization's SAML 2.0 identity provider as Settings shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlSettings {
    pub idp_entity_id: String,
    pub sso_url: String,
    pub certificates: Vec<CertificateView>,
    /// The role of people their first log-in makes members; `None`: nobody is made a member at log-in.
    pub default_role: Option<OrgRole>,
    pub email_attribute: String,
    pub groups_attribute: String,
    pub idp_initiated: bool,
    pub enabled: bool,
    pub updated_at: Timestamp,
}

/// The Settings page's SAML panel: the IdP, if any, and what to give the IdP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlPanel {
    pub settings: Option<SamlSettings>,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
}

/// What an Admin saves: the IdP's metadata XML, or its entity id, SSO URL
/// and certificate (PEM) typed in; never both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlInput {
    pub metadata_xml: String,
    pub idp_entity_id: String,
    pub sso_url: String,
    pub certificate: String,
    pub default_role: String,
    pub email_attribute: String,
    pub groups_attribute: String,
    pub idp_initiated: bool,
    pub enabled: bool,
}

/// Whether an Organization requires single sign-on, and what it would cover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoEnforcement {
    pub org_id: OrgId,
    /// When it began requiring it; `None` while passwords are allowed.
    pub required_since: Option<Timestamp>,
    pub verified_domains: Vec<String>,
    /// An identity provider is set up and on (needed to require it).
    pub provider_enabled: bool,
    /// Members whose email is in one of the verified domains.
    pub members_covered: i64,
}

/// What an Admin saves; an empty `client_secret` keeps the one saved before.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcInput {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub default_role: String,
    pub groups_claim: String,
    pub enabled: bool,
}

/// An Admin API key as lists show it: never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminKeyView {
    pub id: AdminKeyId,
    pub name: String,
    pub org_id: OrgId,
    pub org_name: String,
    pub masked_key: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// Its creator is no longer a member of the Enterprise Account: worth a look.
    pub creator_left: bool,
}

/// A SCIM provisioning token of an Organization, as Settings lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScimTokenView {
    pub id: ScimTokenId,
    pub name: String,
    pub masked_token: String,
    /// Who made it (their email), for the list.
    pub created_by: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The Settings page's provisioning panel: where the identity provider
/// connects, and the Organization's tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScimPanel {
    /// The SCIM base URL, e.g. `https://chancery.example.com/scim/v2`.
    pub base_url: String,
    pub tokens: Vec<ScimTokenView>,
}

/// A token just created: the only time `token` (the full secret) is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedScimToken {
    pub view: ScimTokenView,
    pub token: String,
}

/// A key or token just made, as the page that asked for it shows it once:
/// its name and the whole secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSecret {
    pub name: String,
    pub secret: String,
}

/// A key just created: the only time `key` (the full secret) is ever returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedAdminKey {
    pub view: AdminKeyView,
    pub key: String,
}

/// One page of results and the total count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub page_size: i64,
    pub total: i64,
}

impl<T> Page<T> {
    pub fn has_next(&self) -> bool {
        self.page * self.page_size < self.total
    }
}

/// One page of a list read in keyset order, and where the next page starts
/// (the last item's id, `C`), if there is one: no page counts or skips rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice<T, C = String> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Slice<T, C> {
    /// A page from `fetched`, read one past `size` to tell whether more follow:
    /// `next` is the id of the page's last item when they do.
    pub fn of(mut fetched: Vec<T>, size: i64, id: impl Fn(&T) -> C) -> Self {
        let size = usize::try_from(size).unwrap_or(0);
        let more = fetched.len() > size;
        fetched.truncate(size);
        let next = if more { fetched.last().map(id) } else { None };
        Self { items: fetched, next }
    }
}

/// A page of the audit log, newest first; the next page is older.
pub type AuditSlice = Slice<AuditEntry, i64>;

/// One audit log event as the Admin Panel, the Admin API and exports show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub created_at: Timestamp,
    /// `user`, `admin_api_key` or `operator`.
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// What the target is called now (a workspace's name, a person's email), when
    /// the Admin Panel shows the event and the target still exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// A JSON object, when the event carries before/after values or other facts.
    pub details: Option<String>,
    /// The details as the Admin Panel lists them: (what, value), a change first
    /// as "before → after", field by field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<(String, String)>,
    pub ip: Option<String>,
}

/// Filters of the audit log. Empty strings mean "any".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    /// Part of the actor's email or key name, or an actor id.
    pub actor: String,
    /// An event type (`user.log_in`), or the beginning of some (`organization.`).
    pub action: String,
    /// Dates, `YYYY-MM-DD`, inclusive, UTC.
    pub from: String,
    pub to: String,
}

/// A member of an organization, as the Members page lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub roles: Vec<OrgRole>,
    pub last_login_at: Option<Timestamp>,
}

/// An invitation that has not been accepted (it may have expired).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub email: String,
    pub roles: Vec<OrgRole>,
    /// Workspaces joined on acceptance, besides the Default one.
    pub workspaces: Vec<WorkspaceId>,
    pub invited_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub expired: bool,
}

/// What a person's Organization roles let them do: the one reading of roles
/// that the server's guards (`server::authz`) and the Admin Panel's
/// navigation both use. Permissions add up across roles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Members, invitations, groups, workspaces, everyone's keys, the audit log, settings.
    pub administer: bool,
    /// Billing, spending limits and usage.
    pub manage_billing: bool,
    /// Work in the workspaces granted to them, with keys of their own.
    pub work: bool,
}

impl Capabilities {
    pub fn of(roles: &[OrgRole]) -> Self {
        let administer = roles.contains(&OrgRole::Admin);
        Self {
            administer,
            manage_billing: administer || roles.contains(&OrgRole::Billing),
            work: administer || roles.contains(&OrgRole::Member),
        }
    }

    /// An Admin API key administers its one Organization entirely.
    pub const ALL: Self = Self { administer: true, manage_billing: true, work: true };
}

/// What ended with a change that took someone's access away (see `server::lifecycle`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEnded {
    /// Workspace API keys they owned and may no longer use.
    pub api_keys_revoked: i64,
    /// Pending invitations they made and may no longer make.
    pub invitations_revoked: i64,
    /// Whether their Enterprise Account membership ended with their last Admin role.
    pub left_enterprise: bool,
}

impl AccessEnded {
    /// "2 API keys revoked", for the notice after the change; empty when nothing ended.
    pub fn summary(&self) -> String {
        let plural = |n: i64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        let mut parts = Vec::new();
        if self.api_keys_revoked > 0 {
            parts.push(format!("{} revoked", plural(self.api_keys_revoked, "API key")));
        }
        if self.invitations_revoked > 0 {
            parts.push(format!("{} they sent revoked", plural(self.invitations_revoked, "invitation")));
        }
        if self.left_enterprise {
            parts.push("Enterprise Account membership ended".to_string());
        }
        parts.join(", ")
    }
}

/// What `/invite/{token}` shows before anything is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationPreview {
    pub org_name: String,
    pub email: String,
    pub roles: Vec<OrgRole>,
    /// An account with this email exists: log in to accept, rather than sign up.
    pub account_exists: bool,
    /// Who is signed in in this browser, if anyone.
    pub signed_in_as: Option<CurrentUser>,
}

/// A member of a workspace and their role there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceMember {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub role: WorkspaceRole,
}

/// A workspace someone reaches, and their role there (direct and through groups, united).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberWorkspace {
    pub id: WorkspaceId,
    pub name: String,
    pub is_default: bool,
    pub role: WorkspaceRole,
}

/// A workspace's page: itself, its members, and the groups that reach it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceDetail {
    pub workspace: WorkspaceSummary,
    /// One page of its direct members.
    pub members: Page<WorkspaceMember>,
    /// Groups whose members reach the workspace through the group.
    pub groups: Vec<GroupGrant>,
    /// The viewer administers the organization (and so this workspace); others
    /// granted the workspace see it without its settings.
    pub administers: bool,
    /// The viewer runs this workspace (an Organization Admin or a workspace
    /// Admin): they edit it and its members. False while it is archived.
    pub manages: bool,
    /// Its keys that work now: all stop if it is archived.
    pub working_keys: i64,
}

/// A user group of an Organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub id: GroupId,
    pub name: String,
    pub description: String,
    pub member_count: i64,
    pub workspace_count: i64,
    pub created_at: Timestamp,
    /// The identity provider manages its name and members (SCIM): Admins
    /// decide only what it grants.
    pub managed_by_scim: bool,
    /// The Organization role every member holds through the group.
    pub organization_role: Option<OrgRole>,
    pub target: GroupTarget,
    /// The groups this one is nested in: its people are in those too.
    pub parent_ids: Vec<GroupId>,
}

/// What a group grants its people (Mistral's `target_type`): one kind only,
/// so a group's page and its API record say plainly what being in it gives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupTarget {
    /// Roles on workspaces (`W`).
    #[default]
    Workspaces,
    /// An Organization role (`O`).
    Organization,
}

impl GroupTarget {
    pub const ALL: [GroupTarget; 2] = [GroupTarget::Workspaces, GroupTarget::Organization];

    /// Mistral's code, stored as is.
    pub fn code(self) -> &'static str {
        match self {
            GroupTarget::Workspaces => "W",
            GroupTarget::Organization => "O",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code().eq_ignore_ascii_case(code.trim()))
    }

    pub fn label(self) -> &'static str {
        match self {
            GroupTarget::Workspaces => "Workspace roles",
            GroupTarget::Organization => "An Organization role",
        }
    }
}

/// A person in a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
}

/// A group's grant on a workspace: every member of the group holds `role` there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupGrant {
    pub group_id: GroupId,
    pub group_name: String,
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    pub role: WorkspaceRole,
}

/// A group's page: itself, its members, its workspaces, and the workspaces it could be granted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDetail {
    pub group: GroupSummary,
    /// One page of the group's members, by name.
    pub members: Page<GroupMember>,
    pub workspaces: Vec<GroupGrant>,
    /// Active workspaces the group has no grant on yet.
    pub open_workspaces: Vec<WorkspaceSummary>,
    /// The groups nested in this one, and those it is nested in.
    pub children: Vec<GroupSummary>,
    pub parents: Vec<GroupSummary>,
    /// Groups that could be nested in this one without making a cycle.
    pub nestable: Vec<GroupSummary>,
}

/// What a model of the catalogue does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Chat,
    Embedding,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embedding => "embedding",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Chat, Self::Embedding].into_iter().find(|k| k.as_str() == text)
    }
}

/// A model the gateway serves, with its prices in micro-USD per million tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueModel {
    pub id: String,
    pub kind: ModelKind,
    pub input_micros_per_mtok: i64,
    pub output_micros_per_mtok: i64,
    /// The most tokens one image in a request can cost; `None`: the model takes no images.
    pub image_max_tokens: Option<i64>,
}

/// The tokens one model may use in a workspace (an entry of Mistral's
/// `tokens_limits_by_model`). `None`: no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenLimits {
    pub tokens_per_minute: Option<i64>,
    pub tokens_per_month: Option<i64>,
}

impl TokenLimits {
    pub fn is_unlimited(&self) -> bool {
        self.tokens_per_minute.is_none() && self.tokens_per_month.is_none()
    }
}

/// What a workspace's gateway calls may do, as its Admins set it. `None`: no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub requests_per_second: Option<i64>,
    pub requests_per_minute: Option<i64>,
    /// `None`: every model of the catalogue.
    pub allowed_models: Option<Vec<String>>,
    /// By model id; a model not named has no token limit.
    pub tokens_limits_by_model: std::collections::BTreeMap<String, TokenLimits>,
}

/// A workspace's limits and what it spent this month. `None` means no limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceLimits {
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    pub rate_limits: RateLimits,
    pub monthly_budget_micros: Option<i64>,
    pub month_spend_micros: i64,
}

/// The Billing page: payment method, the organization's limit, and each workspace's budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingView {
    pub active: bool,
    pub payment_method: Option<crate::payment::PaymentMethod>,
    pub monthly_limit_micros: Option<i64>,
    pub month_spend_micros: i64,
    pub workspaces: Vec<WorkspaceLimits>,
    /// The Organization's keys that work now: all stop if billing ends.
    pub working_keys: i64,
}

/// Where a workspace API key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyStatus {
    Active,
    /// Replaced by a rotation; works until the grace period ends.
    Rotating,
    Expired,
    Revoked,
}

impl ApiKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Rotating => "rotating",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// A workspace API key as lists show it: masked, never usable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    pub name: String,
    pub masked_key: String,
    /// `None`: the models the workspace allows.
    pub allowed_models: Option<Vec<String>>,
    /// The key's own limit; `None`: only its workspace's.
    pub requests_per_minute: Option<i64>,
    pub owner_email: Option<String>,
    /// The service account that owns the key, and its name.
    pub service_account: Option<(ServiceAccountId, String)>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub rotated_to: Option<ApiKeyId>,
    pub status: ApiKeyStatus,
    /// Active but not used for 30 days (or never, 30 days after creation).
    pub unused: bool,
    /// Active and living longer than the key lifetime policy now allows (made
    /// before it was set or tightened).
    pub beyond_policy: bool,
}

/// A service account of a workspace (see `server::service_accounts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountView {
    pub id: ServiceAccountId,
    pub org_id: OrgId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: Option<String>,
    pub role: WorkspaceRole,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

/// The longest workspace API keys may live, in days (`None`: no maximum).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPolicy {
    pub org_max_days: Option<i64>,
    /// At most the Organization's.
    pub workspace_max_days: Option<i64>,
}

/// A key just created or rotated: the only time `key` is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    pub view: ApiKeyView,
    pub key: String,
}

/// The width of a usage report's time buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageWidth {
    Hour,
    #[default]
    Day,
}

impl UsageWidth {
    pub fn millis(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    /// `1h` / `1d`, as the usage APIs name them (`hour` and `day` too).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "1h" | "hour" => Some(Self::Hour),
            "1d" | "day" => Some(Self::Day),
            _ => None,
        }
    }
}

/// What a usage report's rows are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageGroupBy {
    Workspace,
    Model,
    Key,
}

impl UsageGroupBy {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "workspace" | "workspace_id" | "project_id" => Some(Self::Workspace),
            "model" => Some(Self::Model),
            "key" | "api_key_id" => Some(Self::Key),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workspace => "workspace",
            Self::Model => "model",
            Self::Key => "key",
        }
    }
}

/// One group's usage in a bucket (or over the whole report).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The workspace id, model id or key id; empty when ungrouped.
    pub group_id: String,
    pub group_name: String,
    pub requests: i64,
    pub failed: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBucket {
    pub start: Timestamp,
    pub end: Timestamp,
    /// By cost, highest first.
    pub rows: Vec<UsageRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Every bucket of the range, oldest first, empty ones included.
    pub buckets: Vec<UsageBucket>,
    /// Per group over the whole range, by cost.
    pub totals: Vec<UsageRow>,
}

impl UsageRow {
    /// The group that stands for all groups not shown one by one.
    pub const OTHERS: &'static str = "others";

    pub(crate) fn add(&mut self, other: &UsageRow) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_micros += other.cost_micros;
    }
}

impl UsageReport {
    /// The report as a page shows it: the `chart` costliest groups in each
    /// bucket and the `table` costliest in the totals, every other group
    /// added into one [`UsageRow::OTHERS`] row, so a page of thousands of keys
    /// sends a few rows per bucket. Sums are unchanged.
    pub fn summarized(self, chart: usize, table: usize) -> Self {
        let keep = |rows: Vec<UsageRow>, shown: &[String]| {
            let (mut kept, rest): (Vec<UsageRow>, Vec<UsageRow>) =
                rows.into_iter().partition(|row| shown.contains(&row.group_id));
            if !rest.is_empty() {
                let mut others = UsageRow {
                    group_id: UsageRow::OTHERS.into(),
                    group_name: format!("{} other{}", rest.len(), if rest.len() == 1 { "" } else { "s" }),
                    ..UsageRow::default()
                };
                rest.iter().for_each(|row| others.add(row));
                kept.push(others);
            }
            kept
        };
        let top = |n: usize| self.totals.iter().take(n).map(|row| row.group_id.clone()).collect::<Vec<_>>();
        let (drawn, listed) = (top(chart), top(table));
        Self {
            buckets: self
                .buckets
                .into_iter()
                .map(|bucket| UsageBucket { rows: keep(bucket.rows, &drawn), ..bucket })
                .collect(),
            totals: keep(self.totals, &listed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WorkspaceRole::{self, Admin, Member};
    use super::{Capabilities, OrgRole, SignUpPolicy};

    #[test]
    fn the_operators_sign_up_policy_is_read_from_one_word_or_a_domain_list() {
        assert_eq!("open".parse(), Ok(SignUpPolicy::Open));
        assert_eq!("invite-only".parse(), Ok(SignUpPolicy::InviteOnly));
        assert_eq!(
            "domains: Acme.test, @acme.co.uk".parse(),
            Ok(SignUpPolicy::Domains(vec!["acme.test".into(), "acme.co.uk".into()]))
        );
        for bad in ["", "closed", "domains:", "domains:localhost", "domains:a b.test"] {
            assert!(bad.parse::<SignUpPolicy>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_summarized_usage_report_shows_the_costliest_groups_and_adds_up_the_rest() {
        use super::{UsageBucket, UsageReport, UsageRow};
        use crate::time::Timestamp;
        let row = |id: &str, cost: i64| UsageRow {
            group_id: id.into(),
            group_name: id.to_uppercase(),
            requests: 1,
            cost_micros: cost,
            ..UsageRow::default()
        };
        let bucket = |rows: Vec<UsageRow>| UsageBucket { start: Timestamp(0), end: Timestamp(1), rows };
        let report = UsageReport {
            buckets: vec![bucket(vec![row("c", 9), row("a", 5), row("d", 1)]), bucket(vec![row("b", 7)])],
            totals: vec![row("c", 9), row("b", 7), row("a", 5), row("d", 1)],
        };
        let shown = report.clone().summarized(1, 3);
        let others = UsageRow { group_name: "2 others".into(), requests: 2, ..row("others", 6) };
        assert_eq!(shown.buckets[0].rows, vec![row("c", 9), others]);
        assert_eq!(
            shown.buckets[1].rows,
            vec![UsageRow { group_name: "1 other".into(), ..row("others", 7) }]
        );
        let ids: Vec<&str> = shown.totals.iter().map(|r| r.group_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a", "others"]);
        let sum = |rows: &[UsageRow]| {
            rows.iter().map(|r| (r.requests, r.cost_micros)).fold((0, 0), |s, r| (s.0 + r.0, s.1 + r.1))
        };
        assert_eq!(sum(&shown.totals), sum(&report.totals), "nothing is lost");
        assert_eq!(report.clone().summarized(10, 10), report, "few groups are shown as they are");
    }

    #[test]
    fn capabilities_add_up_across_roles() {
        let of = |roles: &[OrgRole]| Capabilities::of(roles);
        assert_eq!(of(&[OrgRole::Admin]), Capabilities::ALL, "Admins can do everything");
        assert_eq!(of(&[OrgRole::Billing]), Capabilities { manage_billing: true, ..Default::default() });
        assert_eq!(of(&[OrgRole::Member]), Capabilities { work: true, ..Default::default() });
        assert_eq!(
            of(&[OrgRole::Billing, OrgRole::Member]),
            Capabilities { administer: false, manage_billing: true, work: true }
        );
        assert_eq!(of(&[]), Capabilities::default(), "no role, nothing");
    }

    #[test]
    fn workspace_access_is_the_union_of_grants() {
        assert_eq!(WorkspaceRole::union([]), None);
        assert_eq!(WorkspaceRole::union([Member]), Some(Member));
        assert_eq!(WorkspaceRole::union([Member, Member]), Some(Member));
        assert_eq!(WorkspaceRole::union([Member, Admin]), Some(Admin));
        assert_eq!(WorkspaceRole::union([Admin, Member]), Some(Admin));
    }
}
