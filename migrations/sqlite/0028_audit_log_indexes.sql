-- The audit log is read newest first, a page at a time, by time then id
-- (keyset: each page starts where the last ended). These indexes make that
-- order, and the filters by actor and by event type, range scans however
-- many events an Organization has; the first replaces (org_id, created_at).
CREATE INDEX audit_events_org_recent ON audit_events (org_id, created_at, id);
CREATE INDEX audit_events_org_actor ON audit_events (org_id, actor_id, created_at, id);
CREATE INDEX audit_events_org_action ON audit_events (org_id, action, created_at, id);
DROP INDEX audit_events_org_time;
