-- A counter every write of `hosts` moves forward, in the same transaction: a server syncing
-- its in-memory fleet reads this one value each second and scans the row versions only when
-- it moved (and once a minute regardless, for changes made by hand).
CREATE TABLE fleet_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO fleet_revision (id, revision) VALUES (1, 0);
