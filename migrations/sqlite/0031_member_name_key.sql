-- Members are listed by name, a page at a time. Sorting a large
-- Organization's people by their users' names on every page read them all;
-- a copy of the lower-cased name on the membership, with an index in that
-- order, lets a page read only its own rows. Triggers keep the copy: a new
-- membership takes the person's name, a renamed person renames theirs.
ALTER TABLE org_members ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE org_members SET name_key = (SELECT lower(u.name) FROM users u WHERE u.id = org_members.user_id);
CREATE INDEX org_members_by_name ON org_members (org_id, name_key, user_id);

CREATE TRIGGER org_members_take_name AFTER INSERT ON org_members
BEGIN
    UPDATE org_members SET name_key = (SELECT lower(name) FROM users WHERE id = NEW.user_id)
    WHERE org_id = NEW.org_id AND user_id = NEW.user_id;
END;

CREATE TRIGGER users_rename_memberships AFTER UPDATE OF name ON users
BEGIN
    UPDATE org_members SET name_key = lower(NEW.name) WHERE user_id = NEW.id;
END;
