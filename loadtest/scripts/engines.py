#!/usr/bin/env python3
"""Real engines, cold: Polars `scan_parquet` and DuckDB `read_parquet` with a filter, straight to
an S3-like origin and through rangecache with its cache emptied before every query.

Starts (all on 127.0.0.1, free ports, stopped by PID at the end):
  - the loadtest origin simulator (`target/release/rangecache-loadtest origin`): first byte after
    20 ms + exp(5 ms), 80 MB/s per response stream, SigV4 verified, objects PUT kept in memory;
  - target/release/rangecache in front of it (2 workers, 1 GiB cache, 1 MiB blocks, prefetch as
    configured: `--prefetch off` writes `prefetch.enabled = false`).

Writes a Parquet file with Polars (>= 64 MiB, 16 row groups; random columns so it does not
compress away), PUTs it to the simulator with boto3, then for each repetition and each engine
runs the query direct and through rangecache, alternating which goes first (A B, B A), each in a
fresh Python process (no engine-side cache survives) timed around the query alone. Before every
query through rangecache the cache is emptied (`POST /cache/purge?bucket=`, or a restart with
`--restart`). Results must be equal both ways. Prints per engine the medians, the ratio
rangecache ÷ direct time (below 1 = faster), origin requests and rangecache's prefetch hit share
(used ÷ prefetched, from /metrics deltas) and over-fetch ((prefetched − used) ÷ prefetched).

Usage: .venv/bin/python loadtest/scripts/engines.py [--reps 5] [--prefetch on|off] [--restart]
Needs `cargo build --release -p rangecache -p rangecache-loadtest` first. Not run by CI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from helpers import procs  # noqa: E402
from helpers.cache_obs import purge  # noqa: E402
from helpers.clients import s3_client  # noqa: E402
from helpers.proxy import RangeCache, base_config  # noqa: E402
from helpers.seaweed import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402

BUCKET = "engines"
KEY = "events.parquet"
ROWS = 4_000_000
ROW_GROUPS = 16
PREFETCH = ("rangecache_prefetch_bytes_total", "rangecache_prefetch_used_bytes_total",
            "rangecache_origin_requests_total")

POLARS = """
import sys, time, polars as pl
url, ep = sys.argv[1], sys.argv[2]
opts = {"aws_endpoint_url": ep, "aws_access_key_id": %(ak)r, "aws_secret_access_key": %(sk)r,
        "aws_region": %(region)r, "aws_allow_http": "true", "aws_virtual_hosted_style_request": "false"}
t = time.perf_counter()
df = pl.scan_parquet(url, storage_options=opts).filter(pl.col("k") < 10).select(
    pl.len().alias("n"), pl.col("x").sum().alias("sx"), pl.col("y").max().alias("my")).collect()
dt = time.perf_counter() - t
print(repr((dt, df.row(0))))
""" % {"ak": ACCESS_KEY, "sk": SECRET_KEY, "region": REGION}

DUCKDB = """
import sys, time, glob, duckdb, importlib.util
url, hostport = sys.argv[1], sys.argv[2]
root = list(importlib.util.find_spec("duckdb_ext").submodule_search_locations)[0]
ext = sorted(glob.glob(f"{root}/extensions/v{duckdb.__version__}/*/httpfs.duckdb_extension"))[0]
con = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
con.execute(f"LOAD '{ext}'")
con.execute(f"CREATE SECRET s (TYPE s3, KEY_ID %(ak)r, SECRET %(sk)r, REGION %(region)r, ENDPOINT '{hostport}', URL_STYLE 'path', USE_SSL false)")
t = time.perf_counter()
row = con.execute(f"SELECT count(*), sum(x), max(y) FROM read_parquet('{url}') WHERE k < 10").fetchone()
dt = time.perf_counter() - t
print(repr((dt, tuple(row))))
""" % {"ak": ACCESS_KEY, "sk": SECRET_KEY, "region": REGION}


def write_file(path: Path) -> int:
    import polars as pl

    i = pl.int_range(0, ROWS, eager=True)
    h = i.hash(7)
    df = pl.DataFrame({
        "id": i.cast(pl.Int64),
        "x": (h % 1_000_000_007).cast(pl.Float64) / 1_000_000_007.0,
        "y": (h // 3).cast(pl.Int64),
        "k": (h % 1000).cast(pl.Int32),
        "z": (i.hash(11) // 2).cast(pl.Int64),
    })
    df.write_parquet(path, row_group_size=ROWS // ROW_GROUPS, compression="snappy", statistics=True)
    return path.stat().st_size


def start_simulator(work: Path) -> tuple[subprocess.Popen, str]:
    exe = REPO / "target" / "release" / "rangecache-loadtest"
    port = procs.free_port()
    log = open(work / "origin.log", "wb")
    proc = procs.track(subprocess.Popen([str(exe), "origin", "--listen", f"127.0.0.1:{port}"], stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    log.close()
    procs.wait_until(lambda: procs.port_open(port), 20, what="origin simulator")
    return proc, f"127.0.0.1:{port}"


def start_rangecache(work: Path, origin: str, prefetch: str, n: int) -> RangeCache:
    cfg = base_config(f"http://{origin}", "auto")
    cfg["cache"] = {"memory": "1GiB", "block_size": "1MiB", "metadata_ttl": "60s"}
    if prefetch == "off":
        cfg["prefetch"] = {"enabled": False}
    return RangeCache(work / f"rc{n}", cfg).start()


def run_query(script: str, endpoint_arg: str) -> tuple[float, tuple]:
    url = f"s3://{BUCKET}/{KEY}"
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", NO_PROXY="*")
    out = subprocess.run([sys.executable, "-c", script, url, endpoint_arg], capture_output=True, text=True,
                         timeout=600, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"query failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own child's repr of floats/ints


def same(a: tuple, b: tuple) -> bool:
    """Equal answers; float sums may differ in the last bits (the engines add in parallel)."""
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9) if isinstance(x, float) else x == y
                                    for x, y in zip(a, b))


def metrics(p: RangeCache) -> dict[str, float]:
    return {m: p.metric_sum(m) for m in PREFETCH}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--prefetch", choices=("on", "off"), default="on")
    ap.add_argument("--restart", action="store_true", help="restart rangecache instead of purging")
    ap.add_argument("--json", type=Path, default=REPO / "target" / "engines.json")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rangecache-engines-"))
    sim, origin = start_simulator(work)
    rc = None
    try:
        local = work / KEY
        size = write_file(local)
        import pyarrow.parquet as pq

        groups = pq.ParquetFile(local).metadata.num_row_groups
        s3 = s3_client(f"http://{origin}")
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=local.read_bytes())
        print(f"file: {size / 2**20:.1f} MiB, {groups} row groups, {ROWS} rows; origin simulator {origin}; "
              f"prefetch {args.prefetch}; cache emptied by {'restart' if args.restart else 'purge'} before each query",
              flush=True)
        rc = start_rangecache(work, origin, args.prefetch, 0)
        engines = {"polars": POLARS, "duckdb": DUCKDB}
        results: dict[str, dict[str, list]] = {e: {"direct": [], "rangecache": [], "prefetch": [], "origin_req": []}
                                               for e in engines}
        for rep in range(args.reps):
            for n, (engine, script) in enumerate(engines.items()):
                order = ("direct", "rangecache") if (rep + n) % 2 == 0 else ("rangecache", "direct")
                answers = {}
                for side in order:
                    if side == "direct":
                        ep = f"http://{origin}" if engine == "polars" else origin
                        dt, ans = run_query(script, ep)
                    else:
                        if args.restart:
                            rc.terminate()
                            rc = start_rangecache(work, origin, args.prefetch, rep * 10 + n + 1)
                        else:
                            purge(rc, BUCKET)
                        m0 = metrics(rc)
                        ep = rc.endpoint if engine == "polars" else rc.hostport
                        dt, ans = run_query(script, ep)
                        time.sleep(0.5)  # let prefetches still in flight land in the counters
                        m1 = metrics(rc)
                        d = {k: m1[k] - m0[k] for k in m0}
                        results[engine]["prefetch"].append(d)
                    results[engine][side].append(dt)
                    answers[side] = ans
                if not same(answers["direct"], answers["rangecache"]):
                    print(f"MISMATCH {engine}: direct {answers['direct']} vs rangecache {answers['rangecache']}")
                    return 1
                print(f"  rep {rep + 1} {engine:<7} direct {results[engine]['direct'][-1]:6.2f} s  "
                      f"rangecache (cold) {results[engine]['rangecache'][-1]:6.2f} s", flush=True)
        print()
        print(f"{'engine':<8} {'direct p50 s':>12} {'rc cold p50 s':>13} {'ratio p50':>9} {'per rep':>30} "
              f"{'origin req':>10} {'prefetch used':>13} {'over-fetch':>10}")
        summary = {}
        for engine, r in results.items():
            ratios = [b / a for a, b in zip(r["direct"], r["rangecache"])]
            fetched = sum(d["rangecache_prefetch_bytes_total"] for d in r["prefetch"])
            used = sum(d["rangecache_prefetch_used_bytes_total"] for d in r["prefetch"])
            oreq = statistics.median(d["rangecache_origin_requests_total"] for d in r["prefetch"])
            share = used / fetched if fetched else None
            over = (fetched - used) / fetched if fetched else None
            d50, r50 = statistics.median(r["direct"]), statistics.median(r["rangecache"])
            print(f"{engine:<8} {d50:12.2f} {r50:13.2f} {r50 / d50:8.2f}x {' '.join(f'{x:.2f}' for x in ratios):>30} "
                  f"{oreq:10.0f} {('-' if share is None else f'{share * 100:.1f}%'):>13} "
                  f"{('-' if over is None else f'{over * 100:.1f}%'):>10}")
            summary[engine] = {"direct_s": r["direct"], "rangecache_cold_s": r["rangecache"],
                               "ratio_p50": r50 / d50, "ratios": ratios, "prefetch_bytes": fetched,
                               "prefetch_used_bytes": used, "prefetch_hit_share": share, "over_fetch": over,
                               "origin_requests_median": oreq}
        print("\nratio = rangecache time / direct time (below 1 = faster); over-fetch = (prefetched - used) / "
              "prefetched, read from /metrics deltas per query")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"file_bytes": size, "row_groups": groups, "prefetch": args.prefetch,
                                         "machine": f"{os.cpu_count()} cores, {platform.platform()}",
                                         "engines": summary}, indent=2) + "\n")
        print(f"json: {args.json}")
        return 0
    finally:
        if rc is not None:
            rc.terminate()
        procs.stop_process(sim)


if __name__ == "__main__":
    sys.exit(main())
