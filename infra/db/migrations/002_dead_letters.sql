-- The dead letters: events whose handler failed max_retries + 1 times. A view, so that a replay (status back to
-- pending) takes an event out of it with no copy to keep in step.
CREATE VIEW sovra_dead_letters AS
  SELECT id, function, source, object_key, payload, attempts, last_error, created_at, updated_at AS dead_at
  FROM sovra_events
  WHERE status = 'dead';
