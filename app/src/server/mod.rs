//! Server-only code: the database, sessions, and the domain functions every
//! adapter (server functions, Admin API, CLI) goes through.
//!
//! A domain function takes the acting identity, checks permission, validates
//! input, and writes its change and the audit event in one transaction.

pub mod accounts;
pub mod actor;
pub mod admin_keys;
pub mod api_keys;
pub mod audit;
pub mod audit_chain;
pub mod authz;
pub mod billing;
pub mod db;
pub mod dns;
pub mod domains;
pub mod enterprise;
pub mod gateway;
pub mod groups;
pub mod housekeeping;
pub mod identity;
pub mod key_policy;
pub mod lifecycle;
pub mod mail;
pub mod members;
pub mod models;
pub mod observability;
pub mod oidc;
pub mod orgs;
pub mod overview;
pub mod paging;
pub mod password;
pub mod recovery;
pub mod request;
pub mod saml;
pub mod scim;
pub mod sealed;
pub mod secret_key;
pub mod service_accounts;
pub mod session;
pub mod session_store;
pub mod sso;
pub mod state;
pub mod throttle;
pub mod usage;
pub mod workspaces;
