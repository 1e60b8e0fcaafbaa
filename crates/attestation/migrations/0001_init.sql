-- One schema for SQLite and PostgreSQL: portable types only (TEXT, BIGINT, INTEGER),
-- times as Unix milliseconds, binary values base64 in TEXT, lists as JSON text.

CREATE TABLE hosts (
    agent_id          TEXT PRIMARY KEY,             -- hex of the AK's TPM Name
    host_name         TEXT NOT NULL UNIQUE,         -- hypervisor_hostname, as Nova sends it
    aliases           TEXT NOT NULL,                -- JSON array of other names
    agent_url         TEXT NOT NULL,
    agent_certificate TEXT NOT NULL,                -- PEM, pinned
    ek_public         TEXT NOT NULL,                -- base64 TPM2B_PUBLIC
    ek_certificate    TEXT,                         -- base64 DER
    ak_public         TEXT NOT NULL,                -- base64 TPM2B_PUBLIC
    state             TEXT NOT NULL CHECK (state IN ('challenged', 'enrolled', 'pending_approval')),
    policies          TEXT NOT NULL,                -- JSON array of accepted policy names
    software_tpm      INTEGER NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE enrollment_challenges (
    challenge_id TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,                     -- hex SHA-256 of the secret
    registration TEXT NOT NULL,                     -- the RegisterRequest (JSON), stored as a host on proof
    expires_at   BIGINT NOT NULL
);

CREATE TABLE policies (
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    document   TEXT NOT NULL,                       -- PolicyDocument JSON
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE verdicts (
    id            TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL,
    at            BIGINT NOT NULL,
    level         TEXT NOT NULL CHECK (level IN ('trusted', 'untrusted', 'unknown')),
    policy        TEXT,
    reasons       TEXT NOT NULL,                    -- JSON array of strings
    reset_count   BIGINT,
    restart_count BIGINT,
    clock         BIGINT,
    pcrs          TEXT                              -- JSON {bank: {pcr: hex}} of the quote
);
CREATE INDEX verdicts_agent_at ON verdicts (agent_id, at);

CREATE TABLE latest_evidence (
    agent_id  TEXT PRIMARY KEY,
    at        BIGINT NOT NULL,
    selection TEXT NOT NULL,                        -- tpm2-tools style list (sha256:0,1+sha384:0)
    pcrs      TEXT NOT NULL,                        -- JSON {bank: {pcr: hex}}, verified
    event_log TEXT                                  -- base64, verified against the quote
);

CREATE TABLE audit (
    id      TEXT PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE leases (
    agent_id   TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
