-- Immutable function versions, per-function routing (stable, one canary with a weight, pins), and changes waiting
-- for approval by risk class.
CREATE TABLE sovra_versions (
  id text PRIMARY KEY,
  function text NOT NULL,
  bundle_sha256 text NOT NULL,
  config_sha256 text NOT NULL,
  manifest jsonb NOT NULL,
  risk text NOT NULL CHECK (risk IN ('low', 'medium', 'high')),
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION sovra_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'sovra_versions are immutable: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER sovra_versions_no_change BEFORE UPDATE OR DELETE ON sovra_versions FOR EACH ROW EXECUTE FUNCTION sovra_versions_immutable();

CREATE TABLE sovra_routes (
  function text PRIMARY KEY,
  stable text NOT NULL REFERENCES sovra_versions(id),
  canary text REFERENCES sovra_versions(id),
  canary_weight integer NOT NULL DEFAULT 0 CHECK (canary_weight BETWEEN 0 AND 100),
  previous text REFERENCES sovra_versions(id),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sovra_pins (
  function text NOT NULL,
  attribute text NOT NULL,
  value text NOT NULL,
  version text NOT NULL REFERENCES sovra_versions(id),
  PRIMARY KEY (function, attribute, value)
);

CREATE TABLE sovra_changes (
  id text PRIMARY KEY,
  function text NOT NULL,
  version text NOT NULL REFERENCES sovra_versions(id),
  action text NOT NULL CHECK (action IN ('canary', 'promote')),
  canary_weight integer,
  risk text NOT NULL,
  author text NOT NULL,
  required integer NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'approved', 'applied', 'rejected')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sovra_approvals (
  change_id text NOT NULL REFERENCES sovra_changes(id),
  approver text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (change_id, approver)
);
