-- The audit log: append-only, each entry carrying the hash of the previous one (a chain an auditor can recompute).
-- Updates, deletes and truncation are refused by the database itself, whatever the client.
CREATE TABLE sovra_audit (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL,
  actor text NOT NULL,
  action text NOT NULL,
  subject text NOT NULL,
  before_digest text,
  after_digest text,
  reason text,
  details jsonb NOT NULL DEFAULT '{}',
  prev_hash text NOT NULL,
  hash text NOT NULL UNIQUE
);
CREATE FUNCTION sovra_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'sovra_audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER sovra_audit_no_change BEFORE UPDATE OR DELETE ON sovra_audit FOR EACH ROW EXECUTE FUNCTION sovra_audit_append_only();
CREATE TRIGGER sovra_audit_no_truncate BEFORE TRUNCATE ON sovra_audit FOR EACH STATEMENT EXECUTE FUNCTION sovra_audit_append_only();
