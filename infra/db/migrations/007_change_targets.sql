-- A change names the deploy target it is for (infra/targets): `local` changes move the embedded host's routing when
-- applied; a change for another target (openwhisk) is carried out by that target's next deploy once applied, and
-- never touches the host's routing. Replaces the `openwhisk` action of migration 006, so the control plane has no
-- special case per target.
ALTER TABLE sovra_changes ADD COLUMN target text NOT NULL DEFAULT 'local';
ALTER TABLE sovra_changes DROP CONSTRAINT sovra_changes_action_check;
UPDATE sovra_changes SET target = 'openwhisk', action = CASE WHEN canary_weight IS NULL THEN 'promote' ELSE 'canary' END WHERE action = 'openwhisk';
ALTER TABLE sovra_changes ADD CONSTRAINT sovra_changes_action_check CHECK (action IN ('canary', 'promote'));
