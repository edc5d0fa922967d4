-- Members are listed by name, a page at a time. Sorting a large
-- Organization's people by their users' names on every page read them all;
-- a copy of the lower-cased name on the membership, with an index in that
-- order, lets a page read only its own rows. Triggers keep the copy: a new
-- membership takes the person's name, a renamed person renames theirs.
-- Compared byte by byte ("C"), as SQLite does, so both list in one order.
ALTER TABLE org_members ADD COLUMN name_key TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE org_members m SET name_key = lower(u.name) FROM users u WHERE u.id = m.user_id;
CREATE INDEX org_members_by_name ON org_members (org_id, name_key, user_id);

CREATE FUNCTION org_member_takes_name() RETURNS trigger AS $$
BEGIN
    NEW.name_key := (SELECT lower(name) FROM users WHERE id = NEW.user_id);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER org_members_take_name BEFORE INSERT ON org_members
    FOR EACH ROW EXECUTE FUNCTION org_member_takes_name();

CREATE FUNCTION user_renames_memberships() RETURNS trigger AS $$
BEGIN
    UPDATE org_members SET name_key = lower(NEW.name) WHERE user_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER users_rename_memberships AFTER UPDATE OF name ON users
    FOR EACH ROW EXECUTE FUNCTION user_renames_memberships();
