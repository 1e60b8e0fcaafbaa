-- Every server re-reads (agent_id, updated_at) of the enrolled hosts every second to find
-- the rows that changed; this index answers that without reading the rows themselves.
CREATE INDEX hosts_versions ON hosts (state, agent_id, updated_at);

-- Identical consecutive verdicts of a host are one row: a run of `repeats` attestations
-- from `at` to `until_at` (the latest, whose TPM clock `clock` holds). Without this a fleet
-- attested every 30 s adds about 1 KB per host per attestation: 28 GB a day at 10,000 hosts.
ALTER TABLE verdicts ADD COLUMN until_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE verdicts ADD COLUMN repeats BIGINT NOT NULL DEFAULT 1;
UPDATE verdicts SET until_at = at;

-- Verdicts recorded since a time (servers sharing one database follow each other's), and
-- history older than the retention period (pruned by start time: `at` never changes).
CREATE INDEX host_trust_at ON host_trust (at);
CREATE INDEX verdicts_at ON verdicts (at);
