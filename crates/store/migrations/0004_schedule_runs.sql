-- Schema version 4: the last schedule fire time each monitor was run for, so that `watchpost
-- once --due` (and the serverless runtimes) run a monitor once per fire time of its schedule,
-- however often they are invoked and however many run at once (Store::claim_fired).

-- `fired_at`: nanoseconds since the Unix epoch (UTC) of the latest fire time claimed.
CREATE TABLE schedule_runs (
    monitor  TEXT PRIMARY KEY,
    fired_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
