-- Changes can also target a cluster: an OpenWhisk deploy of a medium/high-risk function waits for approvals here;
-- approving it does not touch the embedded host's routing.
ALTER TABLE sovra_changes DROP CONSTRAINT sovra_changes_action_check;
ALTER TABLE sovra_changes ADD CONSTRAINT sovra_changes_action_check CHECK (action IN ('canary', 'promote', 'openwhisk'));
