//! HTTP-level tests of the web application (pages and server functions),
//! through the real router, on SQLite and on PostgreSQL.

mod accounts;
mod admin_api_users;
mod audit;
mod common;
mod enterprise;
mod members;
mod security;
mod workspaces;
