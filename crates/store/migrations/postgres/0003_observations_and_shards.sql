-- PostgreSQL schema version 3: the same as SQLite's schema version 5
-- (crates/store/migrations/0005_observations_and_shards.sql). Observations pushed by probe
-- agents, when each location last reported, and the shard leases replicas share monitors by.

-- Keyed (monitor, location, slot), in this column order so that a slot's observations are one
-- key range. `slot`, `at`: nanoseconds since the Unix epoch (UTC).
CREATE TABLE observations (
    monitor  TEXT NOT NULL,
    slot     BIGINT NOT NULL,
    location TEXT NOT NULL,
    at       BIGINT NOT NULL,
    ok       BOOLEAN NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (monitor, slot, location)
);

CREATE INDEX observations_slot ON observations (slot);
CREATE INDEX observations_location ON observations (location);

CREATE TABLE location_reports (
    location       TEXT PRIMARY KEY,
    last_report_at BIGINT NOT NULL
);

-- NULL holder and until: free. Rows are created when a shard is first taken.
CREATE TABLE shard_leases (
    shard  BIGINT PRIMARY KEY,
    holder TEXT,
    until  BIGINT
);

CREATE TABLE shard_holders (
    holder TEXT PRIMARY KEY,
    until  BIGINT NOT NULL
);
