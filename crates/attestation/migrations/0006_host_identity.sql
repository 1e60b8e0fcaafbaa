-- Host identity (which TPM is which name): enrollment needs a credential an administrator
-- handed out, one TPM has one name, and every name designates at most one host.

-- One enrollment credential per host name: a single-use bootstrap token (its SHA-256) and/or
-- the SHA-256 of the EK certificate expected. Consumed in the transaction that stores the
-- host. `aliases` are the administrator's, given to the host when it enrolls.
CREATE TABLE enrollment_grants (
    host_name  TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    ek_sha256  TEXT,
    aliases    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Every name that designates a host (its registered name and its aliases), unique across the
-- fleet. A deleted host's names stay as tombstones (agent_id NULL): they designate nobody
-- (never another host's short name) until an administrator gives them out again.
CREATE TABLE host_names (
    name     TEXT PRIMARY KEY,
    agent_id TEXT,
    kind     TEXT NOT NULL CHECK (kind IN ('host_name', 'alias', 'retired'))
);
CREATE INDEX host_names_agent ON host_names (agent_id);
INSERT INTO host_names (name, agent_id, kind) SELECT host_name, agent_id, 'host_name' FROM hosts;

-- Aliases were the agent's own claim until now: they are dropped, an administrator sets
-- them again (trustpool host-alias NAME set …).
UPDATE hosts SET aliases = '[]';

-- One TPM, one host: the SHA-256 of the EK's key (DER SubjectPublicKeyInfo, canonical: the
-- same key sent with other TPM2B_PUBLIC attributes or encodings has the same fingerprint).
-- Filled for existing hosts by the server at start.
ALTER TABLE hosts ADD COLUMN ek_key_sha256 TEXT;
CREATE UNIQUE INDEX hosts_ek_key ON hosts (ek_key_sha256);
UPDATE fleet_revision SET revision = revision + 1 WHERE id = 1;

-- Expired enrollment challenges and old audit rows are deleted hourly (by expiry, by time).
CREATE INDEX enrollment_challenges_expiry ON enrollment_challenges (expires_at);

-- When an administrator last accepted a TPM clock rollback for a host (Unix ms): the clock
-- baseline is the last accepted quote after it. (reenroll_until is no longer used: enrollment
-- grants replaced re-enrollment windows.)
ALTER TABLE hosts ADD COLUMN clock_reset_at BIGINT;
