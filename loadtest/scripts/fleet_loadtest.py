#!/usr/bin/env python3
"""The loadtest `fleet` target: three rangecache nodes behind HAProxy (the shipped
deploy/haproxy/haproxy.cfg) against one node, on the parquet workload.

Starts (all on 127.0.0.1, free ports, stopped by PID at the end):
  - the origin simulator (`rangecache-loadtest origin`: 20 ms + exp(5 ms) first byte, 80 MB/s
    per stream, SigV4 verified, synthetic deterministic objects);
  - "single": one rangecache node in front of it; then "fleet": three nodes (each listing the
    others in fleet.peers) behind HAProxy.
For each, `rangecache-loadtest run --endpoint <node or HAProxy> --targets direct` runs the parquet
workload twice with the same seed and request count: cold (empty caches), then warm. Every byte
is verified by the load generator. Origin requests come from the simulator's /__stats.

Reports, from one run: origin GETs of the fleet's cold pass over the single node's (target:
within 5%, i.e. no block fetched twice across nodes), and warm throughput and latency of the
fleet beside the single node's. On one 2-core machine the fleet's three nodes, HAProxy, the
simulator and the load generator share the same cores: the fleet cannot be faster here; the
figure shows the balancer's cost, not a fleet's capacity.

Usage: .venv/bin/python loadtest/scripts/fleet_loadtest.py [--requests 1500] [-c 8]
       [--workers 1] [--json target/fleet-loadtest.json]
Needs `cargo build --release -p rangecache -p rangecache-loadtest` and Debian's haproxy.
Not run by CI.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from helpers import procs  # noqa: E402
from helpers.haproxy import HAProxy  # noqa: E402
from helpers.proxy import RangeCache, base_config  # noqa: E402

LOADTEST = REPO / "target" / "release" / "rangecache-loadtest"


def start_origin(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = procs.free_port()
    log = open(workdir / "origin.log", "wb")
    proc = procs.track(subprocess.Popen([str(LOADTEST), "origin", "--listen", f"{procs.LOOPBACK}:{port}"],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    log.close()
    procs.wait_until(lambda: procs.port_open(port), timeout=20, what="the origin simulator")
    return proc, f"{procs.LOOPBACK}:{port}"


def origin_stats(origin: str) -> dict:
    with urllib.request.urlopen(f"http://{origin}/__stats", timeout=10) as r:
        return json.loads(r.read())


def start_nodes(n: int, origin: str, workdir: Path, args) -> list[RangeCache]:
    configs = []
    for i in range(n):
        cfg = base_config(f"http://{origin}", "auto", workers=args.workers)
        cfg["cache"] = {"memory": args.memory}
        cfg["fleet"] = {"node_id": f"rc{i + 1}"}
        configs.append(cfg)
    peers = [f"http://{c['server']['admin_listen']}" for c in configs]
    for c in configs:
        c["fleet"]["peers"] = peers if n > 1 else []
    return [RangeCache(workdir / f"rc{i + 1}", c).start() for i, c in enumerate(configs)]


def run_pass(endpoint: str, bucket: str, out: Path, args) -> dict:
    cmd = [str(LOADTEST), "run", "--workload", "parquet", "--targets", "direct", "--rounds", "1",
           "--requests", str(args.requests), "-c", str(args.concurrency), "--seed", str(args.seed),
           "--endpoint", endpoint, "--bucket", bucket, "--upload", "--json", str(out),
           "--svg", str(out.with_suffix(".svg"))]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report = json.loads(out.read_text())
    t = report["workloads"][0]["targets"][0]
    return {
        "requests": t["requests"], "ok": t["ok"], "req_per_s": t["req_per_s"], "mb_per_s": t["mb_per_s"],
        "p50_ms": t["latency"]["p50_ms"], "p99_ms": t["latency"]["p99_ms"],
        "verify_failures": t["verify_failures"], "status_errors": t["status_errors"],
        "transport_errors": t["transport_errors"],
    }


def measure(mode: str, origin: str, workdir: Path, args) -> dict:
    n = 3 if mode == "fleet" else 1
    nodes = start_nodes(n, origin, workdir / mode, args)
    balancer = None
    try:
        if mode == "fleet":
            balancer = HAProxy(workdir / mode / "haproxy", nodes, args.balance_factor).start()
            endpoint = balancer.endpoint
        else:
            endpoint = nodes[0].endpoint
        out = {"nodes": n}
        bucket = f"lt-fleet-{mode}"
        for phase in ("cold", "warm"):
            before = origin_stats(origin)
            r = run_pass(endpoint, bucket, workdir / f"{mode}-{phase}.json", args)
            after = origin_stats(origin)
            r["origin_get"] = after["get"] - before["get"]
            r["origin_head"] = after["head"] - before["head"]
            r["origin_put"] = after["put"] - before["put"]
            r["origin_body_bytes"] = after["body_bytes"] - before["body_bytes"]
            out[phase] = r
        return out
    finally:
        if balancer is not None:
            balancer.stop()
        for node in nodes:
            node.terminate(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1500, help="requests per pass")
    ap.add_argument("-c", "--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="server.workers of each node")
    ap.add_argument("--memory", default="1GiB", help="cache.memory of each node")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--balance-factor", type=int, default=None,
                    help="replace the shipped hash-balance-factor (0 = bounded load off)")
    ap.add_argument("--json", default=str(REPO / "target" / "fleet-loadtest.json"))
    args = ap.parse_args()
    if not LOADTEST.exists():
        ap.error(f"{LOADTEST} not found: cargo build --release -p rangecache -p rangecache-loadtest")

    workdir = Path(args.json).resolve().with_suffix("")
    workdir.mkdir(parents=True, exist_ok=True)
    proc, origin = start_origin(workdir)
    try:
        results = {}
        for mode in ("single", "fleet"):
            print(f"{mode}: running cold and warm passes ...", flush=True)
            results[mode] = measure(mode, origin, workdir, args)
    finally:
        procs.stop_process(proc, timeout=10)

    s, f = results["single"], results["fleet"]
    ratios = {
        "cold_origin_get_fleet_over_single": f["cold"]["origin_get"] / max(s["cold"]["origin_get"], 1),
        "warm_req_per_s_fleet_over_single": f["warm"]["req_per_s"] / max(s["warm"]["req_per_s"], 1e-9),
    }
    print("\n| target | pass | req/s | MB/s | p50 ms | p99 ms | origin GET | origin HEAD | origin MB | verify failures |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, r in results.items():
        for phase in ("cold", "warm"):
            x = r[phase]
            print(f"| {mode} ({r['nodes']} node{'s' if r['nodes'] > 1 else ''}) | {phase} | {x['req_per_s']:.1f} "
                  f"| {x['mb_per_s']:.0f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['origin_get']} "
                  f"| {x['origin_head']} | {x['origin_body_bytes'] / 1e6:.0f} | {x['verify_failures']} |")
    print(f"\ncold origin GETs, fleet / single: {ratios['cold_origin_get_fleet_over_single']:.3f} (target: within 5%)")
    print(f"warm req/s, fleet / single:       {ratios['warm_req_per_s_fleet_over_single']:.2f}")
    Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ratios": ratios,
                                           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
                                          indent=2) + "\n")
    print(f"written: {args.json}")
    failures = sum(r[p]["verify_failures"] + r[p]["status_errors"] + r[p]["transport_errors"]
                   for r in results.values() for p in ("cold", "warm"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
