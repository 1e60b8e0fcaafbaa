-- The scheduler's schema, one for SQLite and PostgreSQL: portable types only (TEXT,
-- BIGINT, DOUBLE PRECISION), times as Unix milliseconds, maps and embedded objects as
-- JSON text.

CREATE TABLE flavors (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    ram_mb       BIGINT NOT NULL,
    vcpus        BIGINT NOT NULL,
    disk_gb      BIGINT NOT NULL,
    ephemeral_gb BIGINT NOT NULL,
    swap_mb      BIGINT NOT NULL,
    rxtx_factor  DOUBLE PRECISION NOT NULL,
    is_public    BIGINT NOT NULL,
    description  TEXT,
    extra_specs  TEXT NOT NULL,                 -- JSON object of strings
    created_at   BIGINT NOT NULL
);

CREATE TABLE compute_nodes (
    id              BIGINT PRIMARY KEY,         -- the hypervisor / service id
    host            TEXT NOT NULL UNIQUE,       -- service host = hypervisor_hostname
    memory_mb       BIGINT NOT NULL,
    vcpus           BIGINT NOT NULL,
    local_gb        BIGINT NOT NULL,
    reported_zone   TEXT NOT NULL,              -- the agent's availability_zone
    agent_url       TEXT NOT NULL,
    disabled        BIGINT NOT NULL,
    disabled_reason TEXT,
    last_seen       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE aggregates (
    id         BIGINT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    metadata   TEXT NOT NULL,                   -- JSON object of strings
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);

CREATE TABLE aggregate_hosts (
    aggregate_id BIGINT NOT NULL REFERENCES aggregates (id) ON DELETE CASCADE,
    host         TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, host)
);

CREATE TABLE servers (
    id          TEXT PRIMARY KEY,               -- UUID
    name        TEXT NOT NULL,
    flavor      TEXT NOT NULL,                  -- JSON: the flavor as booted
    image       TEXT NOT NULL,
    zone        TEXT NOT NULL,
    host        TEXT,
    status      TEXT NOT NULL CHECK (status IN ('BUILD', 'ACTIVE', 'ERROR')),
    task_state  TEXT,
    fault       TEXT,                           -- JSON Fault
    trust_alert TEXT,                           -- JSON TrustAlert
    metadata    TEXT NOT NULL,                  -- JSON object
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE INDEX servers_host ON servers (host);

CREATE TABLE instance_actions (
    server_id TEXT NOT NULL,
    at        BIGINT NOT NULL,
    action    TEXT NOT NULL,                    -- create, delete, trust_alert
    message   TEXT
);

CREATE INDEX instance_actions_server ON instance_actions (server_id, at);
