-- Who approved, and how that was established (issue 11): a signed statement checked against the trust list
-- (`signature`, with the key id and the statement), a verified token (`jwt`), or only a claimed name (`claimed`,
-- accepted for nothing above low risk).
ALTER TABLE sovra_approvals ADD COLUMN verified_by text NOT NULL DEFAULT 'claimed';
ALTER TABLE sovra_approvals ADD COLUMN key_id text;
ALTER TABLE sovra_approvals ADD COLUMN statement jsonb;
