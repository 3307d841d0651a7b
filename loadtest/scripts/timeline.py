#!/usr/bin/env python3
"""Rebuild a loadtest round's timeline from a RANGECACHE_LOADTEST_TRACE file.

usage: timeline.py TRACE [PATH_SUBSTRING]

Prints, in milliseconds from the first client request whose path contains PATH_SUBSTRING
(default: all): each client request (connection, object, range start, first-byte and whole
times) and each GET reaching the origin simulator, in order; then the origin's active
streams and delivered bandwidth in 10 ms steps. See loadtest/src/trace.rs for the format.
"""
import sys


def mib(x):
    return int(x) >> 20


def main():
    path, want = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    clients, arrivals, bodies = [], [], []
    for line in open(path):
        p = line.split()
        if not p:
            continue
        if p[0] == "C" and want in p[2]:
            _, conn, obj, rng, start, fb, total = p
            first = mib(rng.split("-")[0]) if rng != "-" else -1
            clients.append((int(start), int(fb), int(total), conn, obj.rsplit("/", 1)[-1], first))
        elif p[0] == "A" and want in p[1]:
            _, obj, rng, arrive, delay = p
            a, b = rng.split("-") if rng != "-" else ("-1", "-1")
            arrivals.append((int(arrive), int(delay), obj.rsplit("/", 1)[-1], mib(a), (int(b) + 1) >> 20))
        elif p[0] == "S":
            _, key, first, end, t0, t1 = p
            bodies.append((int(t0), int(t1), int(end) - int(first)))
    if not clients:
        sys.exit("no client requests in the trace")
    base = min(c[0] for c in clients)
    end = max(c[0] + c[2] for c in clients)
    events = []
    for start, fb, total, conn, obj, first in clients:
        events.append((start, f"C{conn} {obj} @{first:4d}M  first byte {fb / 1e3:6.1f}  "
                              f"whole {total / 1e3:6.1f}  (done at {(start - base + total) / 1e3:7.1f})"))
    for arrive, delay, obj, a, b in arrivals:
        if base <= arrive <= end:
            events.append((arrive, f"    GET {obj} {a:4d}-{b:4d}M  first-byte delay {delay / 1e3:.1f}"))
    for t, text in sorted(events):
        print(f"{(t - base) / 1e3:8.1f} {text}")
    print(f"round: {(end - base) / 1e3:.1f} ms")
    print("origin streams and bandwidth, 10 ms steps:")
    bodies = [b for b in bodies if b[1] >= base and b[0] <= end and b[1] > b[0]]
    for step in range(0, (end - base) // 10000 + 1):
        lo = base + step * 10000
        hi = lo + 10000
        active = sum(1 for t0, t1, _ in bodies if t0 < hi and t1 > lo)
        sent = sum(n * max(0, min(t1, hi) - max(t0, lo)) / (t1 - t0) for t0, t1, n in bodies)
        print(f"{step * 10:6d} ms  streams {active:3d}  {sent / 10000:7.0f} MB/s")


if __name__ == "__main__":
    main()
