#!/usr/bin/env python3
"""Open-loop load for blackbox_exporter's /probe endpoint, for bench/run.sh.

Issues RATE probe requests per second (request i is due at start + i/RATE, whether or not the
earlier ones have finished), round-robin over N targets (TARGET with {i} replaced by 1..N),
through CONNS keep-alive HTTP/1.1 connections: at most CONNS probes in flight, like a
scheduler's concurrency limit. Runs WARMUP + DURATION seconds; in the measured window (after
the warm-up) it reads the prober's utime+stime from /proc/PID/stat at the window's start and
end, and counts the probes that completed inside it.

Prints key=value lines:
  window_s, checks (completed in the window), ok, failed (probe_success 0, HTTP error or I/O
  error), cpu_s, checks_per_cpu_s, due (requests due in the window), backlog_at_end (due but not
  started when the window ended), dispatch lateness p50/p99/max in ms (a request's start on a
  free connection minus its due time: the driver's own scheduling, including waiting for one of
  the CONNS slots; it is not a blackbox_exporter metric).

Loopback only: the URL must be on 127.0.0.1.
"""

import argparse
import asyncio
import os
import time
import urllib.parse


def proc_user_sys(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat(5) (utime, stime); after the ')' the list starts at field 3.
    hz = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / hz, int(fields[12]) / hz


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def read_response(reader):
    """Status and body of one HTTP/1.1 response (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                break
            body += await reader.readexactly(size + 2)
            del body[-2:]
        body = bytes(body)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() == "close"


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="http://127.0.0.1:PORT/probe?module=http_2xx&target=")
    ap.add_argument("--target", required=True, help="probe target, {i} replaced by 1..N")
    ap.add_argument("-n", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--pid", type=int, required=True, help="the prober whose CPU is measured")
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.url)
    assert u.hostname == "127.0.0.1", "loopback only"
    paths = [
        (u.path + "?" + u.query + urllib.parse.quote(a.target.format(i=i), safe="")).encode()
        for i in range(1, a.n + 1)
    ]
    host = f"{u.hostname}:{u.port}".encode()

    queue = asyncio.Queue()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    w0, w1 = start + a.warmup, start + a.warmup + a.duration
    end = w1
    stats = {"checks": 0, "ok": 0, "failed": 0, "lateness": [], "due": 0}
    window = {}

    def record(done_at, good, lateness):
        if w0 <= done_at < w1:
            stats["checks"] += 1
            stats["ok" if good else "failed"] += 1
            stats["lateness"].append(lateness)

    async def ticker():
        i = 0
        while True:
            now = loop.time()
            if now >= end:
                return
            # Everything due by now, in one go (asyncio's sleeps are ~1 ms coarse).
            while start + i / a.rate <= now:
                due = start + i / a.rate
                if w0 <= due < w1:
                    stats["due"] += 1
                queue.put_nowait((due, paths[i % a.n]))
                i += 1
            await asyncio.sleep(max(0.0, start + i / a.rate - loop.time()))

    async def worker():
        reader = writer = None
        while True:
            due, path = await queue.get()
            started = loop.time()
            if started >= end:
                break
            good = False
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", u.port)
                writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
                status, body, close = await read_response(reader)
                good = status == 200 and b"\nprobe_success 1" in body
                if close:
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                if writer is not None:
                    writer.close()
                writer = None
            record(loop.time(), good, started - due)
        if writer is not None:
            writer.close()

    async def sample(at, key):
        await asyncio.sleep(max(0.0, at - loop.time()))
        window[key] = (loop.time(), proc_user_sys(a.pid))
        if key == "end":
            window["backlog"] = queue.qsize()

    tasks = [asyncio.create_task(worker()) for _ in range(a.conns)]
    await asyncio.gather(ticker(), sample(w0, "start"), sample(w1, "end"))
    # Let the workers see the end: one sentinel each (due in the past, started after `end`).
    for _ in tasks:
        queue.put_nowait((end, b""))
    await asyncio.wait(tasks, timeout=15)

    (t0, (u0, s0)), (t1, (u1, s1)) = window["start"], window["end"]
    cpu = (u1 + s1) - (u0 + s0)
    lat = sorted(stats["lateness"])
    print(f"window_s={t1 - t0:.3f}")
    print(f"due={stats['due']}")
    print(f"checks={stats['checks']}")
    print(f"ok={stats['ok']}")
    print(f"failed={stats['failed']}")
    print(f"backlog_at_end={window['backlog']}")
    print(f"cpu_s={cpu:.3f}")
    print(f"user_s={u1 - u0:.3f}")
    print(f"sys_s={s1 - s0:.3f}")
    print(f"checks_per_cpu_s={stats['checks'] / cpu if cpu > 0 else float('nan'):.1f}")
    print(f"checks_per_wall_s={stats['checks'] / (t1 - t0):.1f}")
    for name, p in (("p50", 50), ("p99", 99)):
        print(f"driver_dispatch_lateness_{name}_ms={percentile(lat, p) * 1000:.2f}")
    print(f"driver_dispatch_lateness_max_ms={(lat[-1] if lat else float('nan')) * 1000:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
