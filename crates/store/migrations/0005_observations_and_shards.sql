-- Schema version 5: what probe agents in other locations push (docs/design-locations.md), when
-- each location last reported, and the shard leases several processes share monitors by
-- (Store::record_observations, Store::claim_shards).

-- One location's observation of one slot (a scheduled tick) of a monitor. The key is
-- (monitor, location, slot), in this order so that a slot's observations are one key range.
-- `slot` and `at`: nanoseconds since the Unix epoch (UTC); `data` a JSON document. A rowid
-- table: in a WITHOUT ROWID one, the secondary indexes would hold the key's columns too and
-- the planner would read a slot through `observations_slot` instead of the key.
CREATE TABLE observations (
    monitor  TEXT NOT NULL,
    slot     INTEGER NOT NULL,
    location TEXT NOT NULL,
    at       INTEGER NOT NULL,
    ok       INTEGER NOT NULL CHECK (ok IN (0, 1)),
    data     TEXT NOT NULL,
    PRIMARY KEY (monitor, slot, location)
) STRICT;

-- Retention, and the count per location.
CREATE INDEX observations_slot ON observations (slot);
CREATE INDEX observations_location ON observations (location);

-- The latest time (ns) a push of each location was received.
CREATE TABLE location_reports (
    location       TEXT PRIMARY KEY,
    last_report_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Shard `shard` (0..SHARDS) is held by `holder` until `until` (ns); NULLs: free. Rows are
-- created when a shard is first taken.
CREATE TABLE shard_leases (
    shard  INTEGER PRIMARY KEY,
    holder TEXT,
    until  INTEGER
) STRICT;

-- The processes taking part, each until its last claim's lease ends (ns): they count for the
-- fair share even while they hold no shard.
CREATE TABLE shard_holders (
    holder TEXT PRIMARY KEY,
    until  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
