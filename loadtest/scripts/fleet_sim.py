#!/usr/bin/env python3
"""Simulate HAProxy's consistent hashing with bounded load over a rangecache fleet.

Reproduces HAProxy 2.6's `balance hash` + `hash-type consistent sdbm avalanche` +
`hash-balance-factor` (src/lb_chash.c, src/backend.c):
  - each server gets weight x 16 points on a 32-bit ring, point i of server id p at
    full_hash(p * 4096 + i) (Bob Jenkins' 32-bit integer avalanche hash);
  - a request's key is hashed with sdbm, then full_hash (the avalanche modifier); it goes to the
    server of the ring point nearest to that hash (before or after);
  - with a balance factor f, a server is eligible only while its concurrent requests stay under
    its share of ceil((all concurrent + 1) * f / 100); an ineligible server passes the request
    to the next point on the ring.

Objects are "/bucket/data/part-NNNNNN.parquet" with Zipf popularity (rank r drawn with weight
1 / r^s). For N = 3 .. 100 nodes it reports:
  - key movement: the share of objects (and of request traffic) whose node changes when one
    node joins (N -> N+1) or one leaves (N -> N-1); the ideal is 1/(N+1) and 1/N;
  - ring balance: the most objects on one node over the mean;
  - load: the busiest node's requests over the mean, without bounded load and with the factor;
    and the share of requests bounded load sent past their first node ("spill": those objects'
    blocks are fetched by a second node too).

Load model: a closed system with `--concurrency` requests per node outstanding; each step one
outstanding request (picked at random) completes and one new request arrives.

Usage: python3 loadtest/scripts/fleet_sim.py [--objects 100000] [--requests 200000]
       [--zipf 1.0] [--weight 100] [--factor 150] [--concurrency 8] [--nodes 3,5,10,20,50,100]
       [--json PATH]
Standard library only; deterministic for a given --seed. Not run by CI.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import sys

MASK = 0xFFFFFFFF
SCALE = 16  # BE_WEIGHT_SCALE
EWGHT_RANGE = 256 * SCALE  # SRV_EWGHT_RANGE


def full_hash(a: int) -> int:
    """HAProxy's full_hash(): Bob Jenkins' 32-bit integer hash."""
    a = (a + 0x7ED55D16 + (a << 12)) & MASK
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & MASK
    a = (a + 0x165667B1 + (a << 5)) & MASK
    a = ((a + 0xD3A2646C) ^ (a << 9)) & MASK
    a = (a + 0xFD7046C5 + (a << 3)) & MASK
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & MASK
    return a


def sdbm(key: bytes) -> int:
    """HAProxy's hash_sdbm()."""
    h = 0
    for c in key:
        h = (c + (h << 6) + (h << 16) - h) & MASK
    return h


def key_hash(key: str) -> int:
    return full_hash(sdbm(key.encode()))


class Ring:
    """The consistent-hash ring of servers `ids` (HAProxy puids), each with `weight`."""

    def __init__(self, ids: list[int], weight: int):
        points = sorted(
            (full_hash(p * EWGHT_RANGE + i), p) for p in ids for i in range(weight * SCALE)
        )
        self.keys = [k for k, _ in points]
        self.owner = [p for _, p in points]
        self.ids = sorted(ids)

    def nearest(self, h: int) -> int:
        """Index of the ring point nearest to `h` (ties go to the point before)."""
        n = len(self.keys)
        nxt = bisect.bisect_left(self.keys, h) % n
        prev = (nxt - 1) % n
        dp = (h - self.keys[prev]) & MASK
        dn = (self.keys[nxt] - h) & MASK
        return prev if dp <= dn else nxt

    def server(self, h: int) -> int:
        return self.owner[self.nearest(h)]

    def bounded(self, h: int, served: dict[int, int], total: int, factor: int) -> int:
        """The server for `h` when each may hold only its share of the concurrent requests."""
        i = self.nearest(h)
        if factor == 0:  # hash-balance-factor 0: bounded load off
            return self.owner[i]
        tot_slots = ((total + 1) * factor + 99) // 100
        n = len(self.ids)
        per, rem = divmod(tot_slots, n)
        for _ in range(len(self.keys)):
            s = self.owner[i]
            pos = self.ids.index(s)
            slots = per + ((pos + 1) * rem) // n - (pos * rem) // n
            if served[s] < max(slots, 1):
                return s
            i = (i + 1) % len(self.keys)
        return self.owner[self.nearest(h)]


def zipf_weights(n: int, s: float) -> list[float]:
    return [1.0 / (r ** s) for r in range(1, n + 1)]


def moved(a: list[int], b: list[int], traffic: list[float]) -> tuple[float, float]:
    """Share of objects, and of traffic, whose server differs between mappings a and b."""
    changed = [x != y for x, y in zip(a, b)]
    total = sum(traffic)
    return (sum(changed) / len(a), sum(t for t, c in zip(traffic, changed) if c) / total)


def simulate(n: int, args, hashes: list[int], traffic: list[float], rng: random.Random) -> dict:
    ids = list(range(1, n + 1))
    ring = Ring(ids, args.weight)
    home = [ring.server(h) for h in hashes]
    bigger = Ring(ids + [n + 1], args.weight)
    joined = [bigger.server(h) for h in hashes]
    gone = rng.choice(ids)
    smaller = Ring([i for i in ids if i != gone], args.weight)
    left = [smaller.server(h) for h in hashes]
    join_objs, join_traffic = moved(home, joined, traffic)
    # Only the departed node's objects may move when it leaves.
    leave_objs, leave_traffic = moved(home, left, traffic)

    per_node = {i: 0 for i in ids}
    for s in home:
        per_node[s] += 1
    mean_objs = len(home) / n

    # Request stream: Zipf-chosen objects.
    picks = rng.choices(range(len(hashes)), weights=traffic, k=args.requests)
    plain = {i: 0 for i in ids}
    for p in picks:
        plain[home[p]] += 1
    bounded = {i: 0 for i in ids}
    served = {i: 0 for i in ids}
    outstanding: list[int] = []
    spill = 0
    nodes_per_object: dict[int, set[int]] = {}
    capacity = args.concurrency * n
    for p in picks:
        if len(outstanding) >= capacity:
            j = rng.randrange(len(outstanding))
            outstanding[j], outstanding[-1] = outstanding[-1], outstanding[j]
            served[outstanding.pop()] -= 1
        s = ring.bounded(hashes[p], served, len(outstanding), args.factor)
        served[s] += 1
        outstanding.append(s)
        bounded[s] += 1
        spill += s != home[p]
        nodes_per_object.setdefault(p, set()).add(s)
    mean_req = args.requests / n
    dup = sum(1 for v in nodes_per_object.values() if len(v) > 1)
    return {
        "nodes": n,
        "join_moved_objects": join_objs,
        "join_moved_traffic": join_traffic,
        "join_ideal": 1 / (n + 1),
        "leave_moved_objects": leave_objs,
        "leave_moved_traffic": leave_traffic,
        "leave_ideal": 1 / n,
        "objects_max_over_mean": max(per_node.values()) / mean_objs,
        "load_max_over_mean_unbounded": max(plain.values()) / mean_req,
        "load_max_over_mean_bounded": max(bounded.values()) / mean_req,
        "spilled_requests": spill / args.requests,
        "objects_on_two_or_more_nodes": dup / max(len(nodes_per_object), 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent s")
    ap.add_argument("--weight", type=int, default=100, help="HAProxy server weight (1..256)")
    ap.add_argument("--factor", type=int, default=150, help="hash-balance-factor")
    ap.add_argument("--concurrency", type=int, default=8, help="outstanding requests per node")
    ap.add_argument("--nodes", default="3,5,10,20,50,100")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args()
    if not 1 <= args.weight <= 256:
        ap.error("--weight must be 1..256 (HAProxy's range)")

    rng = random.Random(args.seed)
    names = [f"/bucket/data/part-{i:06d}.parquet" for i in range(args.objects)]
    hashes = [key_hash(k) for k in names]
    # Popularity rank is independent of the name.
    traffic = zipf_weights(args.objects, args.zipf)
    rng.shuffle(traffic)

    print(f"# {args.objects} objects, Zipf s={args.zipf}, {args.requests} requests, weight "
          f"{args.weight} ({args.weight * SCALE} ring points per node), hash-balance-factor "
          f"{args.factor}, {args.concurrency} outstanding requests per node, seed {args.seed}")
    header = ("nodes", "join moved obj/traffic (ideal)", "leave moved obj/traffic (ideal)",
              "objects max/mean", "load max/mean unbounded", "bounded", "spilled", "objs on 2+ nodes")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    rows = []
    for n in (int(x) for x in args.nodes.split(",")):
        r = simulate(n, args, hashes, traffic, rng)
        rows.append(r)
        print(f"| {n} | {r['join_moved_objects']:.1%} / {r['join_moved_traffic']:.1%} ({r['join_ideal']:.1%}) "
              f"| {r['leave_moved_objects']:.1%} / {r['leave_moved_traffic']:.1%} ({r['leave_ideal']:.1%}) "
              f"| {r['objects_max_over_mean']:.2f} | {r['load_max_over_mean_unbounded']:.2f} "
              f"| {r['load_max_over_mean_bounded']:.2f} | {r['spilled_requests']:.1%} "
              f"| {r['objects_on_two_or_more_nodes']:.1%} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
