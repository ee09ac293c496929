-- Durable delivery of object events and cron runs (triggers/object, triggers/cron).
CREATE TABLE sovra_events (
  id          bigserial PRIMARY KEY,
  function    text        NOT NULL,
  source      text        NOT NULL,
  -- (bucket, key, versionId or etag, sequencer, type): the same event delivered twice is stored once.
  dedupe_key  text        NOT NULL,
  -- bucket/key: events of one object run in order, one at a time.
  object_key  text        NOT NULL,
  sequencer   text        NOT NULL,
  payload     jsonb       NOT NULL,
  status      text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'dead')),
  attempts    integer     NOT NULL DEFAULT 0,
  next_at     timestamptz NOT NULL DEFAULT now(),
  last_error  text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (function, dedupe_key)
);
CREATE INDEX sovra_events_due ON sovra_events (status, next_at);
CREATE INDEX sovra_events_object ON sovra_events (function, object_key, sequencer);

CREATE TABLE sovra_cron_runs (
  id             bigserial PRIMARY KEY,
  function       text        NOT NULL,
  cron           text        NOT NULL,
  scheduled_time timestamptz NOT NULL,
  status         text        NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'skipped', 'dead')),
  attempts       integer     NOT NULL DEFAULT 0,
  last_error     text,
  started_at     timestamptz,
  finished_at    timestamptz,
  UNIQUE (function, cron, scheduled_time)
);
