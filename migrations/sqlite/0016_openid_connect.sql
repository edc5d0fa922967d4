-- An Organization's OpenID Connect identity provider. People whose email is in
-- one of the Organization's verified domains log in through it; the first
-- log-in creates their account and membership with default_role.
--   client_secret_sealed: sealed with the server's key (sealed.rs), never in clear
--   groups_claim: the ID token claim listing the person's groups ('' for none);
--                 the Organization's groups by those names follow it at each log-in
--   enabled_at: NULL while log-in through it is off
CREATE TABLE org_oidc (
    org_id               TEXT PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    issuer               TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret_sealed TEXT NOT NULL,
    default_role         TEXT NOT NULL,
    groups_claim         TEXT NOT NULL,
    enabled_at           BIGINT,
    updated_at           BIGINT NOT NULL
);
