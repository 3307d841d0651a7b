#!/usr/bin/env python3
"""Block-cache figures for the README: rangecache in front of a slow, S3-like origin.

Starts (all on 127.0.0.1, free ports, stopped by PID at the end):
  - the origin simulator tests/e2e/helpers/slow_origin.py in its own process: synthetic
    deterministic objects, first-byte latency ~20 ms +/- 5 ms, ~80 MB/s per connection, any
    signature accepted;
  - target/release/rangecache in front of it (2 workers, 1 GiB cache, 1 MiB blocks).

Measures, interleaving proxy and direct requests (A B A B) in one run:
  (a) cold first-byte and total time of 64 KiB ranges of fresh objects, proxy vs direct;
  (b) the same ranges again (warm) through the proxy, vs direct; also 1 MiB ranges;
  (c) origin requests per block under 64 concurrent cold readers of the same range.
Every body is verified byte for byte. Prints a table; writes JSON to target/cache-figures.json.

Usage: .venv/bin/python loadtest/scripts/cache_figures.py [--requests 50] [--json PATH]
Needs `cargo build --release -p rangecache` first. Not run by CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from helpers import procs  # noqa: E402
from helpers.proxy import RangeCache, base_config, binary  # noqa: E402
from helpers.rawhttp import Closed, Conn, request_bytes  # noqa: E402
from helpers.slow_origin import content  # noqa: E402

MiB = 1 << 20
KiB = 1 << 10
OBJECT_SIZE = 8 * MiB
BLOCK = MiB
BUCKET = "bench"


# -------------------------------------------------------------------------------------- processes
def start_origin(latency: float, jitter: float, bandwidth: float, workdir: Path) -> tuple[subprocess.Popen, str]:
    log = open(workdir / "origin.log", "wb")
    proc = procs.track(subprocess.Popen(
        [sys.executable, str(REPO / "tests/e2e/helpers/slow_origin.py"), "--port", "0", "--latency", str(latency),
         "--jitter", str(jitter), "--bandwidth", str(bandwidth), "--size", str(OBJECT_SIZE)],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd=workdir))
    log.close()
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening "):
        procs.stop_process(proc, timeout=5)
        raise RuntimeError(f"origin simulator did not start: {line!r}\n{procs.tail(workdir / 'origin.log')}")
    return proc, line.split(" ", 1)[1]


def start_proxy(origin_hostport: str, workdir: Path) -> RangeCache:
    exe = binary()
    if not exe.exists():
        raise SystemExit(f"{exe} not found: run `cargo build --release -p rangecache` first")
    cfg = base_config(f"http://{origin_hostport}", "auto", workers=2)
    cfg["cache"] = {"memory": "1GiB", "block_size": "1MiB", "metadata_ttl": "60s"}
    return RangeCache(workdir / "rangecache", cfg).start()


def origin_stats(hostport: str) -> dict:
    with urllib.request.urlopen(f"http://{hostport}/__origin/stats", timeout=10) as r:
        return json.loads(r.read())


def origin_requests(hostport: str, key: str) -> list[tuple[str, str | None]]:
    with urllib.request.urlopen(f"http://{hostport}/__origin/requests?key={key}", timeout=10) as r:
        return [tuple(x) for x in json.loads(r.read())]


def proxy_counters(p: RangeCache) -> dict[str, float]:
    want = ("rangecache_fill_requests_total", "rangecache_fill_bytes_total", "rangecache_origin_requests_total",
            "rangecache_coalesced_waits_total", "rangecache_cache_block_hits_total",
            "rangecache_cache_block_misses_total")
    out = {n.removeprefix("rangecache_").removesuffix("_total"): 0.0 for n in want}
    for name, _labels, value in p.metrics():
        if name in want:
            out[name.removeprefix("rangecache_").removesuffix("_total")] += value
    return out


def cache_stats(p: RangeCache) -> dict:
    with urllib.request.urlopen(p.admin + "/cache/stats", timeout=5) as r:
        return json.loads(r.read())


# ----------------------------------------------------------------------------------------- client
class Client:
    """One keep-alive connection; times the first response byte and the whole response."""

    def __init__(self, hostport: str):
        self.hostport = hostport
        self.conn: Conn | None = None

    def get(self, key: str, first: int, last: int) -> tuple[float, float, bool]:
        """(first-byte seconds, total seconds, body verified)."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = Conn(self.hostport, timeout=60)
            req = request_bytes("GET", f"/{BUCKET}/{key}", self.hostport, [("Range", f"bytes={first}-{last}")])
            t0 = time.perf_counter()
            try:
                self.conn.send(req)
                if not self.conn._fill():
                    raise Closed("closed before the first byte")
                t1 = time.perf_counter()
                r = self.conn.read_response()
            except (Closed, OSError):
                self.close()
                if attempt:
                    raise
                continue  # a keep-alive connection the server had closed: once more, fresh
            t2 = time.perf_counter()
            ok = r.status == 206 and r.complete and r.body == content(key, first, last - first + 1)
            if not r.complete or (r.header("connection") or "").lower() == "close":
                self.close()
            return t1 - t0, t2 - t0, ok
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def summary(xs: list[float]) -> dict:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, max(0, round(0.99 * len(xs)) - 1))]
    return {"n": len(xs), "median_ms": round(statistics.median(xs) * 1000, 3), "p99_ms": round(p99 * 1000, 3),
            "min_ms": round(xs[0] * 1000, 3), "max_ms": round(xs[-1] * 1000, 3)}


# ------------------------------------------------------------------------------------ measurements
def measure_ranges(p: RangeCache, origin: str, n: int, length: int, tag: str, rng: random.Random,
                   plan: list[tuple[str, int]] | None = None) -> tuple[dict, list[tuple[str, int]]]:
    """n requests through the proxy and n direct, interleaved A B A B, for `length`-byte ranges.
    With `plan` (keys and offsets of an earlier round), the proxy side re-reads those (warm)."""
    via, direct = Client(p.hostport), Client(origin)
    t_via, t_dir, f_via, f_dir, bad = [], [], [], [], 0
    keys = []
    for i in range(n):
        if plan is None:
            key, off = f"{tag}-p{i}", rng.randrange(0, OBJECT_SIZE - length)
        else:
            key, off = plan[i]
        keys.append((key, off))
        dkey, doff = f"{tag}-d{i}", rng.randrange(0, OBJECT_SIZE - length)
        order = ((via, key, off, f_via, t_via), (direct, dkey, doff, f_dir, t_dir))
        for client, k, o, fb, tt in (order if i % 2 == 0 else order[::-1]):
            first_byte, total, ok = client.get(k, o, o + length - 1)
            fb.append(first_byte)
            tt.append(total)
            bad += not ok
    via.close()
    direct.close()
    return {"proxy_first_byte": summary(f_via), "proxy_total": summary(t_via),
            "direct_first_byte": summary(f_dir), "direct_total": summary(t_dir),
            "bytes_failed_verification_responses": bad}, keys


def herd(hostport: str, key: str, first: int, last: int, readers: int) -> list[tuple[float, bool]]:
    """`readers` threads, released together, each GET the same range on its own connection."""
    want = content(key, first, last - first + 1)
    barrier = threading.Barrier(readers)
    results: list = [(float("nan"), False)] * readers

    def one(i: int) -> None:
        c = Conn(hostport, timeout=60)
        try:
            barrier.wait(timeout=30)
            t0 = time.perf_counter()
            c.send(request_bytes("GET", f"/{BUCKET}/{key}", hostport, [("Range", f"bytes={first}-{last}")]))
            resp = c.read_response()
            results[i] = (time.perf_counter() - t0, resp.status == 206 and resp.complete and resp.body == want)
        except Exception:  # noqa: BLE001 - counted as a failed response
            pass
        finally:
            c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def measure_concurrent_cold(p: RangeCache, origin: str, rounds: int, readers: int) -> dict:
    """Rounds of `readers` concurrent cold GETs of one range of a fresh object through the proxy,
    each followed by the same herd sent directly to the origin (for the response-time ratio)."""
    first, last = 1_000_000, 3_500_000
    blocks = last // BLOCK - first // BLOCK + 1
    out = {"readers": readers, "range": f"bytes={first}-{last}", "blocks_per_round": blocks, "rounds": rounds}
    gets, heads, fills, bad, t_via, t_dir = 0, 0, 0, 0, [], []
    per_block: dict[tuple[int, int], int] = {}
    for r in range(rounds):
        key = f"herd-{r}-{random.getrandbits(32):08x}"
        o0, c0 = origin_stats(origin), proxy_counters(p)
        res = herd(p.hostport, key, first, last, readers)
        o1, c1 = origin_stats(origin), proxy_counters(p)
        gets += o1["by_method"].get("GET", 0) - o0["by_method"].get("GET", 0)
        heads += o1["by_method"].get("HEAD", 0) - o0["by_method"].get("HEAD", 0)
        fills += c1["fill_requests"] - c0["fill_requests"]
        for method, rng in origin_requests(origin, key):
            if method == "GET":
                a, _, b = (rng or f"bytes=0-{OBJECT_SIZE - 1}")[6:].partition("-")
                for blk in range(int(a) // BLOCK, min(int(b or OBJECT_SIZE - 1), OBJECT_SIZE - 1) // BLOCK + 1):
                    per_block[(r, blk)] = per_block.get((r, blk), 0) + 1
        bad += sum(1 for _, ok in res if not ok)
        t_via += [t for t, ok in res if ok]
        res = herd(origin, key + "-direct", first, last, readers)
        bad += sum(1 for _, ok in res if not ok)
        t_dir += [t for t, ok in res if ok]
    out.update({
        "origin_gets": gets, "origin_heads": heads, "fill_requests": fills,
        "origin_gets_per_block": round(gets / (blocks * rounds), 3),
        "origin_heads_per_round": round(heads / rounds, 2),
        "max_origin_fetches_of_one_block": max(per_block.values(), default=0),
        "blocks_fetched": len(per_block),
        "failed_responses": bad,
        "proxy_response_time": summary(t_via) if t_via else None,
        "direct_response_time": summary(t_dir) if t_dir else None,
    })
    return out


# ------------------------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description="rangecache block-cache figures against a slow origin")
    ap.add_argument("--requests", type=int, default=50, help="requests per side per measurement")
    ap.add_argument("--latency", type=float, default=0.020)
    ap.add_argument("--jitter", type=float, default=0.005)
    ap.add_argument("--bandwidth", type=float, default=80e6, help="origin bytes/s per connection")
    ap.add_argument("--readers", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the concurrent cold-reader test")
    ap.add_argument("--json", type=Path, default=REPO / "target" / "cache-figures.json")
    a = ap.parse_args()

    cores = len(os.sched_getaffinity(0))
    note = (f"load generator, origin simulator and rangecache all share this machine's {cores} cores; "
            "absolute times are noisy, compare proxy and direct within this run")
    print(f"# rangecache block-cache figures\n# {note}\n# origin: first byte {a.latency * 1000:.0f} ms "
          f"+/- {a.jitter * 1000:.0f} ms, {a.bandwidth / 1e6:.0f} MB/s per connection; objects {OBJECT_SIZE // MiB} MiB; "
          f"cache 1 MiB blocks, 2 workers\n", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="rangecache-figures-"))
    origin_proc = proxy = None
    try:
        origin_proc, origin = start_origin(a.latency, a.jitter, a.bandwidth, workdir)
        proxy = start_proxy(origin, workdir)
        rng = random.Random(42)
        # warm both paths' connections (TCP, the proxy's origin pool); not recorded
        measure_ranges(proxy, origin, 4, 64 * KiB, "warmup", rng)

        o0, c0 = origin_stats(origin), proxy_counters(proxy)
        cold, plan = measure_ranges(proxy, origin, a.requests, 64 * KiB, "cold64k", rng)
        o1, c1 = origin_stats(origin), proxy_counters(proxy)
        warm, _ = measure_ranges(proxy, origin, a.requests, 64 * KiB, "warm64k", rng, plan=plan)
        o2, c2 = origin_stats(origin), proxy_counters(proxy)
        # 1 MiB ranges: cold once (fills), then warm
        cold1m, plan1m = measure_ranges(proxy, origin, a.requests, MiB, "cold1m", rng)
        warm1m, _ = measure_ranges(proxy, origin, a.requests, MiB, "warm1m", rng, plan=plan1m)
        herd = measure_concurrent_cold(proxy, origin, a.rounds, a.readers)
        st = cache_stats(proxy)

        def origin_side(before_o, after_o, before_c, after_c) -> dict:
            # the origin's counters include the direct requests: subtract them (one GET each)
            return {"proxy_fill_requests": after_c["fill_requests"] - before_c["fill_requests"],
                    "proxy_fill_bytes": after_c["fill_bytes"] - before_c["fill_bytes"],
                    "proxy_origin_requests": after_c["origin_requests"] - before_c["origin_requests"],
                    "origin_requests_all": after_o["requests"] - before_o["requests"]}

        cold["origin"] = origin_side(o0, o1, c0, c1)
        warm["origin"] = origin_side(o1, o2, c1, c2)
        fig = {
            "note": note,
            "machine": {"cores": cores, "kernel": platform.release(), "python": platform.python_version()},
            "origin_model": {"first_byte_latency_ms": a.latency * 1000, "jitter_ms": a.jitter * 1000,
                             "bandwidth_mb_s_per_connection": a.bandwidth / 1e6, "object_bytes": OBJECT_SIZE},
            "proxy": {"binary": str(binary()), "workers": 2, "block_size": BLOCK, "cache_memory": "1GiB"},
            "cold_64k": cold, "warm_64k": warm, "cold_1m": cold1m, "warm_1m": warm1m,
            "concurrent_cold": herd,
            "cache_stats_end": st,
        }
        failed = (cold["bytes_failed_verification_responses"] + warm["bytes_failed_verification_responses"]
                  + cold1m["bytes_failed_verification_responses"] + warm1m["bytes_failed_verification_responses"]
                  + herd["failed_responses"])
        fig["responses_failed_verification"] = failed
        print_table(fig)
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(fig, indent=2) + "\n")
        print(f"\nJSON: {a.json}")
        return 1 if failed else 0
    finally:
        if proxy is not None:
            code = proxy.terminate(timeout=30)
            if code != 0:
                print(f"rangecache exited with {code}\n{proxy.logs(30)}", file=sys.stderr)
        if origin_proc is not None:
            procs.stop_process(origin_proc, timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def print_table(f: dict) -> None:
    def row(name, s, d=None):
        ratio = f"{s['median_ms'] / d['median_ms']:.2f}x" if d and d["median_ms"] else ""
        dd = f"{d['median_ms']:9.2f} {d['p99_ms']:9.2f}" if d else f"{'':9} {'':9}"
        print(f"{name:34} {s['median_ms']:9.2f} {s['p99_ms']:9.2f}   {dd}   {ratio:>8}")

    print(f"{'':34} {'proxy':>19}   {'direct':>19}   {'median':>8}")
    print(f"{'(milliseconds)':34} {'median':>9} {'p99':>9}   {'median':>9} {'p99':>9}   {'ratio':>8}")
    for label, key in (("64 KiB cold", "cold_64k"), ("64 KiB warm", "warm_64k"), ("1 MiB cold", "cold_1m"),
                       ("1 MiB warm", "warm_1m")):
        m = f[key]
        row(f"{label}: first byte", m["proxy_first_byte"], m["direct_first_byte"])
        row(f"{label}: total", m["proxy_total"], m["direct_total"])
    h = f["concurrent_cold"]
    print(f"\n{h['readers']} concurrent cold readers of {h['range']} ({h['blocks_per_round']} blocks), "
          f"{h['rounds']} rounds: origin GETs per block {h['origin_gets_per_block']}, "
          f"origin HEADs per round {h['origin_heads_per_round']}, most fetches of one block "
          f"{h['max_origin_fetches_of_one_block']}, failed responses {h['failed_responses']}")
    if h["proxy_response_time"] and h["direct_response_time"]:
        row("  response time (whole range)", h["proxy_response_time"], h["direct_response_time"])
    c, w = f["cold_64k"]["origin"], f["warm_64k"]["origin"]
    print(f"origin traffic from the proxy: cold 64 KiB round {c['proxy_origin_requests']:.0f} requests "
          f"({c['proxy_fill_requests']:.0f} fills, {c['proxy_fill_bytes'] / MiB:.1f} MiB); "
          f"warm round {w['proxy_origin_requests']:.0f} requests")
    st = f["cache_stats_end"]
    print(f"cache: hit ratio {st['hit_ratio']:.3f} (blocks), {st['blocks']} blocks, {st['bytes'] / MiB:.1f} MiB")
    print(f"responses that failed verification: {f['responses_failed_verification']}")


if __name__ == "__main__":
    sys.exit(main())
