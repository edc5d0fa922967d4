-- Domains an Organization claims, verified by a TXT record at
-- _chancery-challenge.<domain> holding the token (which is public: it is
-- published in DNS), or by the operator. Single sign-on finds an Organization
-- by its verified domains, so a domain is verified by at most one.
--   verified_by: dns | operator
CREATE TABLE org_domains (
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain      TEXT NOT NULL,
    token       TEXT NOT NULL,
    claimed_at  BIGINT NOT NULL,
    verified_at BIGINT,
    verified_by TEXT,
    PRIMARY KEY (org_id, domain)
);
CREATE UNIQUE INDEX org_domains_verified_once ON org_domains (domain) WHERE verified_at IS NOT NULL;
