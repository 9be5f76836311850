#!/usr/bin/env python3
"""SQLite side of bench/run.sh: reads watchpost's store (schema: crates/store/migrations/).

Schema 3 and later count checks in the per-minute rollups (passing checks add no row of
their own); older schemas count rows of `results` (every check was a row). Both are read, so
a build from before the store work can be measured beside the current one.

  run_store.py sample DB
      While the daemon runs (read-only, WAL: sees the last commit): prints
      `checks_total=… failures_total=… db_bytes=… wal_bytes=…`.

  run_store.py final DB CHECKS_TOTAL
      After the daemon has stopped: `PRAGMA wal_checkpoint(TRUNCATE)`, then the file's size,
      its size per check ever made (CHECKS_TOTAL), and the bytes of each table and index
      (dbstat).
"""

import os
import sqlite3
import sys


def size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def counts(conn):
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version >= 3:
        return conn.execute(
            "SELECT coalesce(sum(checks), 0), coalesce(sum(failures), 0) FROM rollups WHERE step = 60"
        ).fetchone()
    return conn.execute("SELECT count(*), coalesce(sum(1 - ok), 0) FROM results").fetchone()


def sample(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    checks, failures = counts(conn)
    conn.close()
    print(f"checks_total={checks} failures_total={failures} db_bytes={size(db)} wal_bytes={size(db + '-wal')}")


def final(db, checks_total):
    conn = sqlite3.connect(db, timeout=5)
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    (results,) = conn.execute("SELECT count(*) FROM results").fetchone()
    busy, log, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    by = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    conn.close()
    db_bytes = size(db)
    print(f"schema_version={version}")
    print(f"result_rows={results}")
    print(f"checkpoint_busy={busy} checkpoint_log={log} checkpoint_done={done}")
    print(f"db_bytes_after_checkpoint={db_bytes}")
    print(f"db_bytes_per_check_ever={db_bytes / checks_total if checks_total else float('nan'):.1f}")
    for name, b in by:
        print(f"bytes_{name}={b}")


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        sample(sys.argv[2])
    elif sys.argv[1] == "final":
        final(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
