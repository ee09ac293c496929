-- Staged events: an fs-bucket write queues its event before the object becomes visible and releases it after, so a
-- crash in between loses nothing (recovery checks the object and releases or discards the event).
ALTER TABLE sovra_events DROP CONSTRAINT sovra_events_status_check;
ALTER TABLE sovra_events ADD CONSTRAINT sovra_events_status_check
  CHECK (status IN ('staged', 'pending', 'running', 'done', 'dead'));
