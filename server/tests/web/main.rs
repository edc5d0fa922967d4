//! HTTP-level tests of the web application (pages and server functions),
//! through the real router, on SQLite and on PostgreSQL.

mod access;
mod accounts;
mod admin_api_users;
mod api_keys;
mod audit;
mod audit_chain;
mod billing;
mod common;
mod domains;
mod enterprise;
mod gateway;
mod groups;
mod hardening;
mod mail;
mod members;
mod metrics;
mod money;
mod recovery;
mod refusals;
mod saml;
mod schema;
mod scim;
mod security;
mod service_accounts;
mod shutdown;
mod snapshot;
mod sso;
mod storage;
mod traces;
mod usage;
mod workspaces;
