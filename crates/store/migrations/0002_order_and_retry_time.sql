-- Schema version 2: delivery order per incident and channel, retry time measured so that wall
-- clock steps can't inflate it, and indexes for the health queries. Rows queued under version 1
-- get incident NULL (unordered), last_attempt_at NULL and retried_ns 0.

-- The incident the notification belongs to; NULL when it belongs to none. claim_due never
-- claims an item while an earlier (lower id) undelivered item of the same incident and channel
-- is not claimed with it.
ALTER TABLE outbox ADD COLUMN incident TEXT;

-- When the item was last claimed (the `now` of that claim_due); NULL before its first claim.
ALTER TABLE outbox ADD COLUMN last_attempt_at INTEGER;

-- Time spent retrying, in nanoseconds: the sum over claims of the gap since the previous
-- claim, each gap clamped to [0, 1 h].
ALTER TABLE outbox ADD COLUMN retried_ns INTEGER NOT NULL DEFAULT 0;

-- The undelivered items of one incident and channel, in id order (claim_due's order check).
CREATE INDEX outbox_order ON outbox (incident, channel, id)
    WHERE incident IS NOT NULL AND delivered_at IS NULL AND gave_up_at IS NULL;

-- The oldest undelivered item (oldest_undelivered).
CREATE INDEX outbox_undelivered ON outbox (created_at, id)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

-- Items whose last attempt (or creation) lies in the future: the wall clock went back, and
-- claim_due treats them as due.
CREATE INDEX outbox_clock_back ON outbox (coalesce(last_attempt_at, created_at))
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
