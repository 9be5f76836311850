-- Schema version 1. Times are INTEGER nanoseconds since the Unix epoch (UTC);
-- JSON documents are TEXT, validated by the store before they are written.

-- The alert engine's state for one monitor, opaque to the store.
CREATE TABLE monitor_state (
    monitor TEXT PRIMARY KEY NOT NULL,
    state   TEXT NOT NULL,
    -- 1 after the first transition, +1 on every later one.
    version INTEGER NOT NULL
) STRICT;

-- Notifications to deliver, written in the same transaction as the state change.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    monitor         TEXT NOT NULL REFERENCES monitor_state (monitor),
    channel         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    -- Claims so far (a claim is an attempt, even if the worker dies during it).
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    -- The worker that claimed the row last; the lease is free when lease_until is NULL or past.
    leased_by       TEXT,
    lease_until     INTEGER,
    delivered_at    INTEGER,
    gave_up_at      INTEGER
) STRICT;

-- What claim_due scans: rows still to deliver, by due time.
CREATE INDEX outbox_due ON outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

CREATE TABLE incidents (
    id        TEXT PRIMARY KEY NOT NULL,
    monitor   TEXT NOT NULL REFERENCES monitor_state (monitor),
    opened_at INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    closed_at INTEGER
) STRICT;

CREATE INDEX incidents_monitor ON incidents (monitor, opened_at);

-- One row per (monitor, location, tick).
CREATE TABLE results (
    id       INTEGER PRIMARY KEY,
    monitor  TEXT NOT NULL,
    location TEXT NOT NULL,
    at       INTEGER NOT NULL,
    ok       INTEGER NOT NULL CHECK (ok IN (0, 1)),
    data     TEXT NOT NULL
) STRICT;

CREATE INDEX results_latest ON results (monitor, location, at);
CREATE INDEX results_at ON results (at);
