-- Every server re-reads (agent_id, updated_at) of the enrolled hosts every second to find
-- the rows that changed; this index answers that without reading the rows themselves.
CREATE INDEX hosts_versions ON hosts (state, agent_id, updated_at);
