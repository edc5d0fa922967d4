//! Data shared by the server and the browser: roles and the views pages show.

use serde::{Deserialize, Serialize};

use crate::ids::{OrgId, UserId, WorkspaceId};

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

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Admin, Self::Member].into_iter().find(|r| r.as_str() == name)
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
}

/// What the Admin Panel's home shows: one organization and the workspaces the viewer may see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminOverview {
    pub user: CurrentUser,
    pub org: OrgSummary,
    pub workspaces: Vec<WorkspaceSummary>,
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
