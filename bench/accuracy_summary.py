#!/usr/bin/env python3
"""Summarise bench/accuracy.sh raw CSV: per scenario and phase, the medians of curl and
watchpost, their difference, and whether it is within the target max(1 ms, 3% of curl's).

    python3 bench/accuracy_summary.py bench/results/accuracy-STAMP.csv
"""
import csv
import statistics
import sys

PHASES = ["dns", "connect", "tls", "wait", "download", "total"]
# The phases each scenario injects a delay into (the others are ~0 on loopback).
INJECTED = {
    "dns": {"dns", "total"},
    "tls": {"tls", "total"},
    "wait": {"wait", "total"},
    "download": {"download", "total"},
    "all": {"dns", "tls", "wait", "download", "total"},
}


def quartiles(xs):
    xs = sorted(xs)
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def main(path):
    rows = list(csv.DictReader(open(path)))
    scenarios = []
    for r in rows:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
    print("| scenario | injected | phase | curl median ms (IQR) | watchpost median ms (IQR) "
          "| diff ms | tolerance ms | within |")
    print("|---|---|---|---|---|---|---|---|")
    misses = 0
    for sc in scenarios:
        sub = [r for r in rows if r["scenario"] == sc]
        injected = sub[0]["injected"]
        for ph in PHASES:
            c = [float(r[ph]) for r in sub if r["tool"] == "curl" and r[ph] != ""]
            w = [float(r[ph]) for r in sub if r["tool"] == "watchpost" and r[ph] != ""]
            if not c or not w:
                continue
            cm, wm = statistics.median(c), statistics.median(w)
            diff = wm - cm
            tol = max(1.0, 0.03 * cm)
            ok = abs(diff) <= tol
            misses += not ok
            mark = "**" if ph in INJECTED.get(sc, set()) else ""
            cq, wq = quartiles(c), quartiles(w)
            print(f"| {sc} | {injected} | {mark}{ph}{mark} | {cm:.3f} ({cq[0]:.3f}–{cq[1]:.3f}) "
                  f"| {wm:.3f} ({wq[0]:.3f}–{wq[1]:.3f}) | {diff:+.3f} | {tol:.3f} "
                  f"| {'yes' if ok else 'NO'} |")
    reps = len([r for r in rows if r["tool"] == "curl"]) // max(1, len(scenarios))
    print(f"\n{reps} repetitions per scenario; medians; bold = the phase(s) with the injected delay; "
          f"{misses} row(s) outside max(1 ms, 3%).")


if __name__ == "__main__":
    main(sys.argv[1])
