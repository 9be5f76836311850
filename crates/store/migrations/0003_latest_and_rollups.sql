-- Schema version 3: results as data people read. The last result of each monitor and
-- location, with its metrics; per-minute and per-hour rollups (checks, failures, and a
-- summary of each metric); the results table keeps full detail only where it helps a person:
-- failing results and the first passing one after a failure.

-- The last result of each monitor and location. `metrics` is a JSON object {name: value}.
CREATE TABLE latest (
    monitor  TEXT NOT NULL,
    location TEXT NOT NULL,
    at       INTEGER NOT NULL,
    ok       INTEGER NOT NULL CHECK (ok IN (0, 1)),
    data     TEXT NOT NULL,
    metrics  TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (monitor, location)
) STRICT, WITHOUT ROWID;

INSERT INTO latest (monitor, location, at, ok, data)
SELECT monitor, location, at, ok, data FROM results r
WHERE id = (SELECT max(id) FROM results x
            WHERE x.monitor = r.monitor AND x.location = r.location
              AND x.at = (SELECT max(at) FROM results y
                          WHERE y.monitor = r.monitor AND y.location = r.location));

-- Per monitor, location, step (60: a minute, 3600: an hour) and bucket (its start, ns since
-- the epoch): checks, failures, and `metrics`, a JSON object {name: summary} (count, min,
-- max, sum and a log histogram for percentiles; crates/store/src/sketch.rs).
CREATE TABLE rollups (
    monitor  TEXT NOT NULL,
    location TEXT NOT NULL,
    step     INTEGER NOT NULL,
    bucket   INTEGER NOT NULL,
    checks   INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    metrics  TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (monitor, location, step, bucket)
) STRICT, WITHOUT ROWID;

-- Retention prunes by step and age.
CREATE INDEX rollups_age ON rollups (step, bucket);

-- The counts of the results already stored (their metrics are not known as numbers).
INSERT INTO rollups (monitor, location, step, bucket, checks, failures)
SELECT monitor, location, 60, at - at % 60000000000, count(*), sum(1 - ok)
FROM results GROUP BY monitor, location, at - at % 60000000000;
INSERT INTO rollups (monitor, location, step, bucket, checks, failures)
SELECT monitor, location, 3600, at - at % 3600000000000, count(*), sum(1 - ok)
FROM results GROUP BY monitor, location, at - at % 3600000000000;
