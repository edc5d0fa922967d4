-- Mistral's group shapes: a group's `target_type` says what it grants, and
-- groups nest.
--
-- `target_type`: 'W', workspace roles (`user_group_workspaces`), or 'O', an
-- Organization role (`user_groups.organization_role`). A group grants one kind;
-- groups that already hold an Organization role become 'O'.
ALTER TABLE user_groups ADD COLUMN target_type TEXT NOT NULL DEFAULT 'W';
UPDATE user_groups SET target_type = 'O' WHERE organization_role IS NOT NULL;

-- A child group nested in a parent: the child's people are in the parent too,
-- at any depth. What admins set; never a cycle (refused where it is written).
CREATE TABLE user_group_nesting (
    parent_group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    child_group_id  TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (parent_group_id, child_group_id),
    CHECK (parent_group_id <> child_group_id)
);
CREATE INDEX user_group_nesting_child ON user_group_nesting (child_group_id);

-- Every (ancestor, descendant) pair the nesting implies, a group not being its
-- own: derived from `user_group_nesting` (rewritten for the Organization
-- whenever it changes) so that reading who is in a group is a plain join.
CREATE TABLE user_group_closure (
    ancestor_id   TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    descendant_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (ancestor_id, descendant_id)
);
CREATE INDEX user_group_closure_descendant ON user_group_closure (descendant_id);

-- Everyone a group includes: its members and those of the groups nested in
-- it. What access is read from; `user_group_members` is what admins set.
-- Someone in two nested groups appears twice (UNION ALL keeps filters
-- pushed into both halves): count with DISTINCT.
CREATE VIEW group_people AS
    SELECT group_id, user_id FROM user_group_members
    UNION ALL
    SELECT c.ancestor_id, m.user_id
    FROM user_group_closure c JOIN user_group_members m ON m.group_id = c.descendant_id;

DROP VIEW effective_org_roles;
CREATE VIEW effective_org_roles AS
    SELECT org_id, user_id, role FROM org_member_roles
    UNION
    SELECT g.org_id, gp.user_id, g.organization_role
    FROM user_groups g
    JOIN group_people gp ON gp.group_id = g.id
    JOIN org_members m ON m.org_id = g.org_id AND m.user_id = gp.user_id
    WHERE g.organization_role IS NOT NULL;
