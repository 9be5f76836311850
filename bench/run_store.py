#!/usr/bin/env python3
"""SQLite side of bench/run.sh: reads watchpost's store (schema: crates/store/migrations/).

  run_store.py sample DB
      While the daemon runs (read-only, WAL: sees the last commit): prints
      `max_id=… db_bytes=… wal_bytes=…` (results.id only grows: no deletes in a short run,
      retention is 7 days).

  run_store.py final DB ID0 ID1 T0_NS T1_NS
      After the daemon has stopped: the rows committed in the window (ID0, ID1] and how many
      were ok; the rows whose tick (`at`) lies in [T0_NS, T1_NS); then
      `PRAGMA wal_checkpoint(TRUNCATE)` and the file's size per stored result, with the
      results table and its two indexes measured apart (dbstat).
"""

import os
import sqlite3
import sys


def size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def sample(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    (max_id,) = conn.execute("SELECT coalesce(max(id), 0) FROM results").fetchone()
    conn.close()
    print(f"max_id={max_id} db_bytes={size(db)} wal_bytes={size(db + '-wal')}")


def final(db, id0, id1, t0, t1):
    conn = sqlite3.connect(db, timeout=5)
    n, ok = conn.execute(
        "SELECT count(*), coalesce(sum(ok), 0) FROM results WHERE id > ? AND id <= ?", (id0, id1)
    ).fetchone()
    (ticked,) = conn.execute(
        "SELECT count(*) FROM results WHERE at >= ? AND at < ?", (t0, t1)
    ).fetchone()
    (rows,) = conn.execute("SELECT count(*) FROM results").fetchone()
    (avg_data,) = conn.execute("SELECT coalesce(avg(length(data)), 0) FROM results").fetchone()
    (monitors,) = conn.execute("SELECT count(*) FROM monitor_state").fetchone()
    busy, log, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    freelist = conn.execute("PRAGMA freelist_count").fetchone()[0]
    by = dict(
        conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat WHERE name IN "
            "('results', 'results_latest', 'results_at', 'monitor_state') GROUP BY name"
        ).fetchall()
    )
    conn.close()
    db_bytes = size(db)
    print(f"window_rows={n}")
    print(f"window_rows_ok={ok}")
    print(f"rows_ticked_in_window={ticked}")
    print(f"rows_total={rows}")
    print(f"monitor_state_rows={monitors}")
    print(f"checkpoint_busy={busy} checkpoint_log={log} checkpoint_done={done}")
    print(f"page_size={page} freelist_pages={freelist}")
    print(f"db_bytes_after_checkpoint={db_bytes}")
    print(f"wal_bytes_after_checkpoint={size(db + '-wal')}")
    print(f"db_bytes_per_row={db_bytes / rows if rows else float('nan'):.1f}")
    results = by.get("results", 0)
    latest = by.get("results_latest", 0)
    at = by.get("results_at", 0)
    per = (lambda b: f"{b / rows:.1f}") if rows else (lambda b: "nan")
    print(f"results_table_bytes={results} results_latest_index_bytes={latest} results_at_index_bytes={at}")
    print(f"monitor_state_bytes={by.get('monitor_state', 0)}")
    print(f"bytes_per_row_table={per(results)}")
    print(f"bytes_per_row_indexes={per(latest + at)}")
    print(f"bytes_per_row_results_total={per(results + latest + at)}")
    print(f"avg_data_json_bytes={avg_data:.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        sample(sys.argv[2])
    elif sys.argv[1] == "final":
        final(sys.argv[2], *(int(x) for x in sys.argv[3:7]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
