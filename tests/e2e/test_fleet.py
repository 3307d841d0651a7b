"""A fleet: three rangecache nodes behind a real HAProxy running the shipped
deploy/haproxy/haproxy.cfg, SeaweedFS behind them, all on loopback.

- clients (boto3, polars, duckdb) through the balancer get what they get direct;
- path-style and virtual-hosted requests for one object land on one node;
- 200 write-then-read cycles, half of them writing through a node the object does not hash to,
  read nothing stale although every node trusts metadata for an hour (fleet invalidation), while
  a write that bypasses the fleet is (by design) not seen until that TTL;
- the admin token: missing, wrong and rotated-out tokens are refused, health and metrics stay open;
- one node stopped mid-run (SIGTERM, then back, then SIGKILL): reads keep succeeding, only
  that node's objects move, and the few reads that fail are counted.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request

import pytest

from helpers import procs, rawhttp
from helpers.clients import s3_client
from helpers.haproxy import NODE_PROXY, HAProxy
from helpers.seaweed import ACCESS_KEY, REGION, SECRET_KEY

pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")
from polars.testing import assert_frame_equal  # noqa: E402
from test_dataframes import duck, make_frame, same_rows, storage_options  # noqa: E402

pytestmark = pytest.mark.needs_binary

NODES = 3
DOMAIN = "s3.example.internal"  # as in the shipped haproxy.cfg
TOKEN_1 = "fleet-token-one-" + os.urandom(8).hex()
TOKEN_2 = "fleet-token-two-" + os.urandom(8).hex()
CYCLES = 200


# --------------------------------------------------------------------------------------------
# The fleet
# --------------------------------------------------------------------------------------------
class Fleet:
    def __init__(self, nodes, balancer: HAProxy, token_path, bucket: str):
        self.nodes = nodes
        self.balancer = balancer
        self.token_path = token_path
        self.token = TOKEN_1
        self.bucket = bucket
        self.by_name = {f"rc{i + 1}": n for i, n in enumerate(nodes)}

    def client(self, node=None):
        return s3_client(node.endpoint if node is not None else self.balancer.endpoint)


@pytest.fixture(scope="module")
def fleet(module_proxy_factory, seaweed, tmp_path_factory):
    token_path = tmp_path_factory.mktemp("fleet-token") / "admin.token"
    token_path.write_text(TOKEN_1 + "\n")
    configs = [
        module_proxy_factory.config(
            seaweed.endpoint,
            server={"domain": DOMAIN},
            # Metadata is trusted for an hour: a read that is fresh is fresh by invalidation.
            cache={"metadata_ttl": "1h"},
            admin={"token_file": str(token_path)},
            fleet={"node_id": f"rc{i + 1}", "invalidation_timeout": "2s"},
            # The shipped haproxy.cfg sends PROXY protocol v2 (send-proxy-v2).
            proxy=dict(NODE_PROXY),
        )
        for i in range(NODES)
    ]
    # Every node lists the whole fleet, itself included (it skips itself).
    peers = [f"http://{c['server']['admin_listen']}" for c in configs]
    for c in configs:
        c["fleet"]["peers"] = peers
    nodes = [module_proxy_factory.create(c).start() for c in configs]
    balancer = HAProxy(tmp_path_factory.mktemp("haproxy"), nodes).start()
    bucket = f"fleet-{os.getpid() % 10000}"
    s3_client(seaweed.endpoint).create_bucket(Bucket=bucket)
    yield Fleet(nodes, balancer, token_path, bucket)
    code = balancer.stop()
    assert code in (0, 143, -15), f"haproxy exited with {code}\n{balancer.logs()}"


def served_by(resp: dict) -> str:
    return resp["ResponseMetadata"]["HTTPHeaders"]["x-rangecache-node"]


def admin_get(node, path: str, token: str | None, method: str = "GET"):
    """(status, content type, headers, body) of an admin request."""
    req = urllib.request.Request(node.admin + path, method=method, data=b"" if method == "POST" else None)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("content-type"), r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type"), e.headers, e.read().decode()


def fleet_counts(fleet: Fleet) -> dict[str, float]:
    out: dict[str, float] = {}
    for n in fleet.nodes:
        for name, labels, value in n.metrics():
            if name == "rangecache_fleet_invalidations_total":
                out[labels["result"]] = out.get(labels["result"], 0) + value
    return out


# --------------------------------------------------------------------------------------------
# Clients through the balancer equal direct
# --------------------------------------------------------------------------------------------
def test_boto3_through_balancer_equals_direct(fleet, direct_s3):
    bal = fleet.client()
    data = {f"obj/{i:03d}.bin": os.urandom(50_000 + i * 1_000) for i in range(24)}
    for key, body in data.items():
        direct_s3.put_object(Bucket=fleet.bucket, Key=key, Body=body)
    nodes_seen = set()
    for key, body in data.items():
        got = bal.get_object(Bucket=fleet.bucket, Key=key)
        nodes_seen.add(served_by(got))
        assert got["Body"].read() == body, key
        for rng in ("bytes=0-99", "bytes=1000-20999", "bytes=-777", "bytes=49000-"):
            via = bal.get_object(Bucket=fleet.bucket, Key=key, Range=rng)
            direct = direct_s3.get_object(Bucket=fleet.bucket, Key=key, Range=rng)
            assert via["Body"].read() == direct["Body"].read(), (key, rng)
            assert via["ContentRange"] == direct["ContentRange"], (key, rng)
        head = bal.head_object(Bucket=fleet.bucket, Key=key)
        assert head["ContentLength"] == len(body)
        assert head["ETag"] == direct_s3.head_object(Bucket=fleet.bucket, Key=key)["ETag"]
    listed = bal.list_objects_v2(Bucket=fleet.bucket, Prefix="obj/")
    assert [o["Key"] for o in listed["Contents"]] == sorted(data)
    assert nodes_seen == set(fleet.by_name), f"24 objects should spread over all nodes, got {nodes_seen}"


def test_dataframes_through_balancer_equal_direct(fleet, seaweed):
    frame = make_frame()
    key = "pq/fleet.parquet"
    frame.write_parquet(f"s3://{fleet.bucket}/{key}", row_group_size=20_000, statistics=True,
                        storage_options=storage_options(seaweed.endpoint))
    url = f"s3://{fleet.bucket}/{key}"

    def polars_query(endpoint):
        lf = pl.scan_parquet(url, storage_options=storage_options(endpoint))
        return lf.filter(pl.col("id").is_between(50_000, 121_000) & (pl.col("x") > 0.25)).collect()

    for _ in range(2):  # cold, then warm
        assert_frame_equal(polars_query(fleet.balancer.endpoint), polars_query(seaweed.endpoint))
    sql = (f"SELECT k, count(*), min(name), max(ts), sum(x) FROM read_parquet('{url}') "
           f"WHERE flag GROUP BY k ORDER BY k")
    for _ in range(2):
        via = duck(fleet.balancer.hostport).execute(sql).fetchall()
        direct = duck(seaweed.hostport).execute(sql).fetchall()
        assert via and same_rows(via, direct)


def test_path_style_and_virtual_hosted_hash_to_one_node(fleet, direct_s3):
    keys = [f"style/{i}/data.parquet" for i in range(12)]
    for k in keys:
        direct_s3.put_object(Bucket=fleet.bucket, Key=k, Body=k.encode() * 100)
    homes = set()
    for k in keys:
        answers = []
        for path, host in ((f"/{fleet.bucket}/{k}", fleet.balancer.hostport),
                           (f"/{k}", f"{fleet.bucket}.{DOMAIN}")):
            r = rawhttp.exchange(fleet.balancer.hostport, rawhttp.request_bytes("GET", path, host))
            assert r is not None and r.status == 200, (k, host, r and r.status, r and r.body[:300])
            assert r.body == k.encode() * 100
            answers.append(r.header("x-rangecache-node"))
        assert answers[0] == answers[1], f"{k}: path-style on {answers[0]}, virtual-hosted on {answers[1]}"
        homes.add(answers[0])
    assert len(homes) > 1, "12 objects all on one node: the hash key is not the object"


# --------------------------------------------------------------------------------------------
# Read-after-write through any node
# --------------------------------------------------------------------------------------------
def write_read_cycles(fleet: Fleet, prefix: str, cycles: int) -> dict:
    bal = fleet.client()
    own = {name: fleet.client(node) for name, node in fleet.by_name.items()}
    keys = [f"{prefix}/k{j}" for j in range(4)]
    home = {}
    for k in keys:
        bal.put_object(Bucket=fleet.bucket, Key=k, Body=b"initial " + k.encode())
        home[k] = served_by(bal.get_object(Bucket=fleet.bucket, Key=k))
    stale, forced, moved = 0, 0, 0
    for i in range(cycles):
        k = keys[i % len(keys)]
        body = f"{k} version {i} {os.urandom(6).hex()} ".encode() * (1 + i % 5)
        if i % 2:
            # Write through a node the object does not hash to: only fleet invalidation can
            # tell the object's own node.
            others = sorted(n for n in own if n != home[k])
            writer = others[(i // 2) % len(others)]
            own[writer].put_object(Bucket=fleet.bucket, Key=k, Body=body)
            forced += 1
        else:
            bal.put_object(Bucket=fleet.bucket, Key=k, Body=body)
        got = bal.get_object(Bucket=fleet.bucket, Key=k)
        reader = served_by(got)
        moved += reader != home[k]
        if got["Body"].read() != body:
            stale += 1
    return {"cycles": cycles, "stale": stale, "forced_cross_node": forced, "reads_off_home": moved,
            "home": home}


def test_read_after_write_through_any_node(fleet, seaweed, figures):
    before = fleet_counts(fleet)
    out = write_read_cycles(fleet, "cycle", CYCLES)
    after = fleet_counts(fleet)
    assert out["forced_cross_node"] == CYCLES // 2
    assert out["reads_off_home"] == 0, out
    assert out["stale"] == 0, out
    ok = after.get("ok", 0) - before.get("ok", 0)
    # Every write (4 initial + CYCLES) fanned out to the two other nodes.
    assert ok == 2 * (CYCLES + 4), (before, after)
    for result in ("error", "timeout", "rejected", "overloaded"):
        assert after.get(result, 0) == 0, after
    for n in fleet.nodes:
        assert n.metric_sum("rangecache_fleet_peers") == NODES - 1
    # The control: a write that bypasses the fleet (straight to the origin) is not seen through
    # the balancer, because every node trusts its metadata for an hour. So the 0 above is the
    # invalidation's doing, not an uncached read.
    k = "cycle/k0"
    bal = fleet.client()
    cached = bal.get_object(Bucket=fleet.bucket, Key=k)["Body"].read()
    s3_client(seaweed.endpoint).put_object(Bucket=fleet.bucket, Key=k, Body=b"written behind the fleet's back")
    assert bal.get_object(Bucket=fleet.bucket, Key=k)["Body"].read() == cached
    total = sum(n.metric_sum("rangecache_fleet_invalidation_seconds_sum") for n in fleet.nodes)
    count = sum(n.metric_sum("rangecache_fleet_invalidation_seconds_count") for n in fleet.nodes)
    figures["fleet_read_after_write"] = {k: v for k, v in out.items() if k != "home"} | {
        "peer_calls": count, "mean_peer_invalidation_ms": round(1000 * total / max(count, 1), 2)}


# --------------------------------------------------------------------------------------------
# The admin token
# --------------------------------------------------------------------------------------------
def test_admin_token_guards_state(fleet):
    node = fleet.nodes[0]
    for path, method in (("/cache/stats", "GET"), ("/config", "GET"),
                         (f"/cache/purge?bucket={fleet.bucket}", "POST"),
                         ("/cache/invalidate?origin=default&bucket=b&key=k", "POST"), ("/nope", "GET")):
        for token in (None, "wrong-" + TOKEN_1, TOKEN_1 + "x"):
            status, ctype, headers, body = admin_get(node, path, token, method)
            assert status == 401, (path, token, status, body)
            assert ctype == "application/problem+json", (path, ctype)
            assert headers.get("www-authenticate", "").startswith("Bearer"), headers
            assert json.loads(body)["status"] == 401
    for path in ("/healthz", "/readyz", "/metrics"):
        assert admin_get(node, path, None)[0] == 200, path
    status, ctype, _, body = admin_get(node, "/cache/stats", TOKEN_1)
    assert status == 200 and json.loads(body)["node"] == "rc1"
    status, _, _, body = admin_get(node, "/config", TOKEN_1)
    assert status == 200 and "token_file" in json.loads(body)["admin"]
    assert TOKEN_1 not in body
    assert node.metric_sum("rangecache_admin_unauthorized_total") >= 15
    # STS stays reachable without the token: it answers with its own (XML) error.
    req = urllib.request.Request(node.admin + "/", method="POST",
                                 data=b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, ctype = r.status, r.headers.get("content-type")
    except urllib.error.HTTPError as e:
        status, ctype = e.code, e.headers.get("content-type")
    assert status != 401 and "xml" in (ctype or ""), (status, ctype)


def test_token_rotation_by_sighup(fleet):
    fleet.token_path.write_text(TOKEN_2 + "\n")
    for n in fleet.nodes:
        n.reload()
    for n in fleet.nodes:
        assert admin_get(n, "/cache/stats", TOKEN_1)[0] == 401, "the old token still works"
        status, _, _, body = admin_get(n, "/cache/stats", TOKEN_2)
        assert status == 200, body
    fleet.token = TOKEN_2
    # The peers now authenticate with the new token: cross-node writes still invalidate.
    before = fleet_counts(fleet)
    out = write_read_cycles(fleet, "rotated", 20)
    after = fleet_counts(fleet)
    assert out["stale"] == 0, out
    assert after.get("rejected", 0) == before.get("rejected", 0) == 0, after
    assert after.get("ok", 0) - before.get("ok", 0) == 2 * (20 + 4)


def test_peer_list_reloads_on_sighup(fleet):
    """Emptying a node's fleet.peers by SIGHUP stops its invalidations (a cross-node write then
    reads stale until the TTL, as the docs say); restoring the list brings them back."""
    import copy

    writer_name, writer = "rc1", fleet.nodes[0]
    bal, own = fleet.client(), fleet.client(writer)
    key = next(k for k in (f"reload/k{i}" for i in range(64))
               if served_by(bal.put_object(Bucket=fleet.bucket, Key=k, Body=b"x")) != writer_name)
    bal.put_object(Bucket=fleet.bucket, Key=key, Body=b"first")
    assert bal.get_object(Bucket=fleet.bucket, Key=key)["Body"].read() == b"first"
    alone = copy.deepcopy(writer.config)
    alone["fleet"]["peers"] = []
    original = writer.config
    writer.reload(alone)
    try:
        assert writer.metric_sum("rangecache_fleet_peers") == 0
        own.put_object(Bucket=fleet.bucket, Key=key, Body=b"second")
        assert bal.get_object(Bucket=fleet.bucket, Key=key)["Body"].read() == b"first", \
            "without peers the object's own node was not told"
    finally:
        writer.reload(original)
    assert writer.metric_sum("rangecache_fleet_peers") == NODES - 1
    own.put_object(Bucket=fleet.bucket, Key=key, Body=b"third")
    assert bal.get_object(Bucket=fleet.bucket, Key=key)["Body"].read() == b"third"


def test_protect_metrics(proxy_factory, seaweed, tmp_path):
    token = tmp_path / "token"
    token.write_text("metrics-token\n")
    p = proxy_factory.start(seaweed.endpoint, admin={"token_file": str(token), "protect_metrics": True})
    assert admin_get(p, "/metrics", None)[0] == 401
    assert admin_get(p, "/metrics", "nope")[0] == 401
    status, _, _, body = admin_get(p, "/metrics", "metrics-token")
    assert status == 200 and "rangecache_admin_unauthorized_total 2" in body
    assert admin_get(p, "/healthz", None)[0] == 200
    assert admin_get(p, "/readyz", None)[0] == 200


def test_bad_token_file_is_a_startup_error(proxy_factory, seaweed, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    cfg = proxy_factory.config(seaweed.endpoint, admin={"token_file": str(empty)})
    p = proxy_factory.create(cfg)
    with pytest.raises(RuntimeError):
        p.start(timeout=10)
    assert "[validate_config] admin.token_file" in p.logs(), p.logs()


# --------------------------------------------------------------------------------------------
# Node loss (last: it stops nodes)
# --------------------------------------------------------------------------------------------
READERS = 3


def reads_during(fleet: Fleet, bodies: dict[str, bytes], action) -> dict:
    """READERS threads read `bodies` through the balancer (no client retries) while `action()`
    runs once enough reads went through; returns the tally of reads before and after it."""
    keys = sorted(bodies)
    stop_reading = threading.Event()
    acted = threading.Event()
    lock = threading.Lock()
    tally = {"ok_before": 0, "ok_after": 0, "failed": 0, "wrong": 0, "failures": []}
    started = threading.Barrier(READERS + 1)

    def read_loop(seed: int):
        client = fleet.client()
        i = seed
        started.wait()
        while not stop_reading.is_set():
            k = keys[i % len(keys)]
            i += 7
            phase = "ok_after" if acted.is_set() else "ok_before"
            try:
                got = client.get_object(Bucket=fleet.bucket, Key=k)["Body"].read()
            except Exception as e:  # noqa: BLE001 - counted, not hidden
                with lock:
                    tally["failed"] += 1
                    tally["failures"].append(f"{k}: {type(e).__name__}: {str(e)[:120]}")
                continue
            with lock:
                tally[phase] += 1
                tally["wrong"] += got != bodies[k]

    threads = [threading.Thread(target=read_loop, args=(s,)) for s in range(READERS)]
    for t in threads:
        t.start()
    try:
        started.wait()
        procs.wait_until(lambda: tally["ok_before"] >= 60, timeout=60, what="reads before the stop")
        action()
        acted.set()
        procs.wait_until(lambda: tally["ok_after"] >= 120, timeout=120, what="reads after the stop")
    finally:
        stop_reading.set()
        for t in threads:
            t.join(timeout=60)
    return tally


def wait_for_homes(fleet: Fleet, bodies: dict[str, bytes], want) -> None:
    """Wait until every object reads right through the balancer from a node `want(key, node)`
    accepts (HAProxy's health checks have caught up)."""
    bal = fleet.client()

    def sweep_ok() -> bool:
        for k, body in bodies.items():
            got = bal.get_object(Bucket=fleet.bucket, Key=k)
            if not want(k, served_by(got)) or got["Body"].read() != body:
                return False
        return True

    procs.wait_until(sweep_ok, timeout=30, what="every object readable from the expected nodes")


def test_node_stopped_mid_run_then_back_then_killed(fleet, direct_s3, figures):
    bodies = {f"loss/{i:03d}": os.urandom(20_000) + b"loss" for i in range(30)}
    for k, b in bodies.items():
        direct_s3.put_object(Bucket=fleet.bucket, Key=k, Body=b)
    bal = fleet.client()
    home = {k: served_by(bal.get_object(Bucket=fleet.bucket, Key=k)) for k in bodies}
    victim_name = max(fleet.by_name, key=lambda n: sum(1 for h in home.values() if h == n))
    victim = fleet.by_name[victim_name]
    victim_objects = sum(1 for h in home.values() if h == victim_name)
    assert victim_objects > 0

    # SIGTERM: the node drains what it has in flight, then HAProxy moves only its objects.
    def stop():
        code = victim.terminate(timeout=60)
        assert code == 0, f"{victim_name} exited with {code}\n{victim.logs()}"

    stopped = reads_during(fleet, bodies, stop)
    wait_for_homes(fleet, bodies, lambda k, n: n != victim_name and (home[k] == victim_name or n == home[k]))
    assert stopped["wrong"] == 0, stopped
    # Only requests caught on the stopping node may fail: at most a few per reader.
    assert stopped["failed"] <= 3 * READERS, stopped

    # Back: the node's objects return to it, and only those.
    victim.start()
    wait_for_homes(fleet, bodies, lambda k, n: n == home[k])

    # SIGKILL: no drain. Requests in flight on it fail; the rest keep succeeding.
    killed = reads_during(fleet, bodies, victim.kill)
    wait_for_homes(fleet, bodies, lambda k, n: n != victim_name)
    assert killed["wrong"] == 0, killed
    assert killed["failed"] <= 3 * READERS, killed
    figures["fleet_node_loss"] = {
        "readers": READERS, "objects": len(bodies), "victim_objects": victim_objects,
        "sigterm": {k: v for k, v in stopped.items() if k != "failures"} | {"samples": stopped["failures"][:3]},
        "sigkill": {k: v for k, v in killed.items() if k != "failures"} | {"samples": killed["failures"][:3]},
    }
