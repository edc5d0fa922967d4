-- An Organization's SAML 2.0 identity provider (Web Browser SSO, HTTP-POST
-- binding to Chancery's ACS). As with OpenID Connect, people whose email is in
-- one of the Organization's verified domains log in through it.
--   idp_entity_id: the IdP's entity id, the Issuer its assertions must name
--   sso_url: where AuthnRequests go (HTTP-Redirect binding)
--   certificates: the IdP's signing certificates, base64 DER, one per line
--                 (public keys: nothing here is secret)
--   email_attribute: the attribute holding the email ('' = the NameID)
--   groups_attribute: the attribute listing the person's groups ('' = none)
--   idp_initiated: 1 when log-ins the IdP starts (no AuthnRequest) are accepted
--   enabled_at: NULL while log-in through it is off
CREATE TABLE org_saml (
    org_id           TEXT PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    idp_entity_id    TEXT NOT NULL,
    sso_url          TEXT NOT NULL,
    certificates     TEXT NOT NULL,
    default_role     TEXT NOT NULL,
    email_attribute  TEXT NOT NULL,
    groups_attribute TEXT NOT NULL,
    idp_initiated    BIGINT NOT NULL,
    enabled_at       BIGINT,
    updated_at       BIGINT NOT NULL
);
-- Assertions already used, kept until they expire, so none is accepted twice.
CREATE TABLE saml_assertions_used (
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    assertion_id TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, assertion_id)
);
