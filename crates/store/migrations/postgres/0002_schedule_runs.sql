-- PostgreSQL schema version 2: the same as SQLite's schema version 4
-- (crates/store/migrations/0004_schedule_runs.sql). The last schedule fire time each monitor
-- was run for (Store::claim_fired).

-- `fired_at`: nanoseconds since the Unix epoch (UTC) of the latest fire time claimed.
CREATE TABLE schedule_runs (
    monitor  TEXT PRIMARY KEY,
    fired_at BIGINT NOT NULL
);
