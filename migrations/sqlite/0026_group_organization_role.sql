-- An Organization role granted through a group (Mistral's `organization_role`):
-- every member of the group holds it while they are a member of both.
-- `effective_org_roles` is what anyone holds, directly or through groups: the
-- one place permissions read roles from (writes go to `org_member_roles`).
ALTER TABLE user_groups ADD COLUMN organization_role TEXT;

CREATE VIEW effective_org_roles AS
    SELECT org_id, user_id, role FROM org_member_roles
    UNION
    SELECT g.org_id, gm.user_id, g.organization_role
    FROM user_groups g
    JOIN user_group_members gm ON gm.group_id = g.id
    JOIN org_members m ON m.org_id = g.org_id AND m.user_id = gm.user_id
    WHERE g.organization_role IS NOT NULL;
