-- Issue 11: each compute node has its own compute token, created by an administrator
-- (`trustpool hypervisor-create NAME`); heartbeats no longer create nodes. Only the
-- token's SHA-256 (hex) is stored. Nodes created before this migration have none: their
-- heartbeats are refused until an administrator rotates one in
-- (`trustpool hypervisor-token-rotate NAME`).
ALTER TABLE compute_nodes ADD COLUMN token_sha256 TEXT;
CREATE UNIQUE INDEX compute_nodes_token ON compute_nodes (token_sha256);
