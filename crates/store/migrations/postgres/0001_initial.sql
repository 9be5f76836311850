-- PostgreSQL schema version 1: the same tables as SQLite's schema version 3
-- (crates/store/migrations/000{1,2,3}_*.sql), so both backends behave alike. Times are BIGINT
-- nanoseconds since the Unix epoch (UTC); JSON documents are TEXT, validated by the store.

-- The alert engine's state for one monitor, opaque to the store. `version` 0 with a NULL
-- state is the placeholder a first transition inserts to lock the row; it is never committed
-- without the transition's write.
CREATE TABLE monitor_state (
    monitor TEXT PRIMARY KEY,
    state   TEXT,
    version BIGINT NOT NULL
);

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    monitor         TEXT NOT NULL REFERENCES monitor_state (monitor),
    channel         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    leased_by       TEXT,
    lease_until     BIGINT,
    delivered_at    BIGINT,
    gave_up_at      BIGINT,
    incident        TEXT,
    last_attempt_at BIGINT,
    retried_ns      BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX outbox_due ON outbox (next_attempt_at, id)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX outbox_order ON outbox (incident, channel, id)
    WHERE incident IS NOT NULL AND delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX outbox_undelivered ON outbox (created_at, id)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX outbox_clock_back ON outbox ((coalesce(last_attempt_at, created_at)))
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
-- Retention.
CREATE INDEX outbox_finished ON outbox ((coalesce(delivered_at, gave_up_at)))
    WHERE delivered_at IS NOT NULL OR gave_up_at IS NOT NULL;

CREATE TABLE incidents (
    id        TEXT PRIMARY KEY,
    monitor   TEXT NOT NULL REFERENCES monitor_state (monitor),
    opened_at BIGINT NOT NULL,
    reason    TEXT NOT NULL,
    closed_at BIGINT
);

CREATE INDEX incidents_monitor ON incidents (monitor, opened_at);

-- Failing results and the first passing one after a failure.
CREATE TABLE results (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    monitor  TEXT NOT NULL,
    location TEXT NOT NULL,
    at       BIGINT NOT NULL,
    ok       BOOLEAN NOT NULL,
    data     TEXT NOT NULL
);

CREATE INDEX results_latest ON results (monitor, location, at);
CREATE INDEX results_at ON results (at);

-- The last result of each monitor and location. `metrics` is a JSON object {name: value}.
CREATE TABLE latest (
    monitor  TEXT NOT NULL,
    location TEXT NOT NULL,
    at       BIGINT NOT NULL,
    ok       BOOLEAN NOT NULL,
    data     TEXT NOT NULL,
    metrics  TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (monitor, location)
);

CREATE INDEX latest_at ON latest (at);

-- Per monitor, location, step (60 or 3600) and bucket (its start, ns): checks, failures and
-- a JSON object {name: summary} (crates/store/src/sketch.rs).
CREATE TABLE rollups (
    monitor  TEXT NOT NULL,
    location TEXT NOT NULL,
    step     BIGINT NOT NULL,
    bucket   BIGINT NOT NULL,
    checks   BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    metrics  TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (monitor, location, step, bucket)
);

CREATE INDEX rollups_age ON rollups (step, bucket);
