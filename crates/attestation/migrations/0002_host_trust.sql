-- The latest verdict per host, maintained with every verdict insert, so that reloading the
-- trust cache reads one row per host instead of grouping the whole history.
CREATE TABLE host_trust (
    agent_id TEXT PRIMARY KEY,
    verdict_id TEXT NOT NULL,
    at BIGINT NOT NULL
);
INSERT INTO host_trust (agent_id, verdict_id, at)
    SELECT v.agent_id, MAX(v.id), v.at FROM verdicts v
    JOIN (SELECT agent_id AS a, MAX(at) AS m FROM verdicts GROUP BY agent_id) l ON v.agent_id = l.a AND v.at = l.m
    GROUP BY v.agent_id, v.at;
