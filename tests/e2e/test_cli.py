"""awscli and s5cmd through rangecache vs. straight to SeaweedFS."""

from __future__ import annotations

import json
import os
import random
import time
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.clients import clean_aws_env
from helpers.compare import assert_same

MiB = 1 << 20
BIN = Path(sys.executable).parent


def run(cmd: list[str], env: dict, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=300, input=input, stdin=None if input else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}\nstdout: {r.stdout[-3000:]!r}\nstderr: {r.stderr[-3000:]!r}")
    return r


@pytest.fixture
def aws_env(tmp_path):
    return clean_aws_env(tmp_path / "aws")


# ------------------------------------------------------------------------------------------ awscli
class Aws:
    def __init__(self, endpoint: str, env: dict):
        self.endpoint, self.env = endpoint, env

    def __call__(self, *args, check=True, input=None):
        return run([str(BIN / "aws"), "--endpoint-url", self.endpoint, *args], self.env, check=check, input=input)


def test_awscli(proxy, seaweed, module_bucket, aws_env, tmp_path):
    via = Aws(proxy.endpoint, aws_env)
    direct = Aws(seaweed.endpoint, aws_env)
    b = module_bucket
    data = random.Random(7).randbytes(12 * MiB + 5)
    src = tmp_path / "twelve.bin"
    src.write_bytes(data)

    # upload (12 MiB > awscli's 8 MiB threshold: multipart) through the proxy
    via("s3", "cp", str(src), f"s3://{b}/cli/twelve.bin")
    # ... and the same file directly, to compare what each produced
    direct("s3", "cp", str(src), f"s3://{b}/cli-direct/twelve.bin")

    def head(a, key):
        out = json.loads(a("s3api", "head-object", "--bucket", b, "--key", key).stdout)
        out.pop("LastModified", None) if key.startswith("cli-direct") else None
        return out

    hp = head(via, "cli/twelve.bin")
    hd = head(direct, "cli/twelve.bin")
    assert_same(hp, hd, "s3api head-object")
    assert hp["ContentLength"] == len(data)
    assert hp["ETag"] == head(direct, "cli-direct/twelve.bin")["ETag"], "multipart ETag differs from a direct upload"

    # ls: bucket list, prefix list, recursive list
    for args in (["s3", "ls"], ["s3", "ls", f"s3://{b}/cli/"], ["s3", "ls", "--recursive", f"s3://{b}/"]):
        assert_same(via(*args).stdout.decode(), direct(*args).stdout.decode(), " ".join(args))

    # download through proxy and direct
    for name, a in (("proxy", via), ("direct", direct)):
        dst = tmp_path / f"down-{name}.bin"
        a("s3", "cp", f"s3://{b}/cli/twelve.bin", str(dst))
        assert dst.read_bytes() == data, f"download via {name} differs"
    # stream to stdout
    out = via("s3", "cp", f"s3://{b}/cli/twelve.bin", "-").stdout
    assert out == data

    # sync a directory up through the proxy, list both ways, sync down again
    up = tmp_path / "syncdir"
    (up / "sub dir").mkdir(parents=True)
    files = {"a.txt": b"alpha", "sub dir/b+c.txt": b"beta" * 1000, "sub dir/ü.bin": random.Random(8).randbytes(300_000)}
    # Backdated: S3's LastModified has one-second resolution, and `sync` re-uploads a local
    # file whose mtime is newer than it, which a file written in the upload's second can be.
    old = time.time() - 60
    for rel, body in files.items():
        (up / rel).write_bytes(body)
        os.utime(up / rel, (old, old))
    via("s3", "sync", str(up), f"s3://{b}/sync/")
    args = ["s3", "ls", "--recursive", f"s3://{b}/sync/"]
    listing = via(*args).stdout.decode()
    assert_same(listing, direct(*args).stdout.decode(), "ls after sync")
    assert len(listing.strip().splitlines()) == len(files)
    down = tmp_path / "syncdown"
    via("s3", "sync", f"s3://{b}/sync/", str(down))
    for rel, body in files.items():
        assert (down / rel).read_bytes() == body
    # second sync is a no-op (it compares sizes and times from the listing)
    again = via("s3", "sync", str(up), f"s3://{b}/sync/").stdout.decode()
    assert "upload:" not in again

    # rm through the proxy; gone both ways
    via("s3", "rm", f"s3://{b}/cli/twelve.bin")
    for a in (via, direct):
        r = a("s3api", "head-object", "--bucket", b, "--key", "cli/twelve.bin", check=False)
        assert r.returncode != 0 and b"404" in r.stderr, r.stderr
    via("s3", "rm", "--recursive", f"s3://{b}/sync/")
    p, d = via(*args, check=False), direct(*args, check=False)
    assert_same((p.returncode, p.stdout), (d.returncode, d.stdout), "ls after rm --recursive")
    assert p.stdout == b""


# ------------------------------------------------------------------------------------------ s5cmd
class S5:
    def __init__(self, endpoint: str, env: dict):
        self.endpoint, self.env = endpoint, env

    def __call__(self, *args, check=True):
        return run([str(BIN / "s5cmd"), "--endpoint-url", self.endpoint, "--retry-count", "0", *args], self.env, check=check)


def test_s5cmd(proxy, seaweed, module_bucket, aws_env, tmp_path):
    via = S5(proxy.endpoint, aws_env)
    direct = S5(seaweed.endpoint, aws_env)
    b = module_bucket
    small = b"hello from s5cmd\n" * 10
    big = random.Random(11).randbytes(7 * MiB + 3)
    (tmp_path / "small.txt").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)

    via("cp", str(tmp_path / "small.txt"), f"s3://{b}/s5/small.txt")
    via("cp", str(tmp_path / "big.bin"), f"s3://{b}/s5/big.bin")

    for key, body in (("s5/small.txt", small), ("s5/big.bin", big)):
        p = via("cat", f"s3://{b}/{key}").stdout
        d = direct("cat", f"s3://{b}/{key}").stdout
        assert p == body, f"s5cmd cat {key} through proxy: {len(p)} bytes, want {len(body)}"
        assert d == body

    for args in (("ls", f"s3://{b}/s5/"), ("ls", f"s3://{b}/s5/*"), ("ls",)):
        assert_same(via(*args).stdout.decode(), direct(*args).stdout.decode(), "s5cmd " + " ".join(args))

    dst = tmp_path / "down"
    dst.mkdir()
    via("cp", f"s3://{b}/s5/*", str(dst) + "/")
    assert (dst / "small.txt").read_bytes() == small
    assert (dst / "big.bin").read_bytes() == big

    via("rm", f"s3://{b}/s5/small.txt")
    r = direct("ls", f"s3://{b}/s5/")
    assert "small.txt" not in r.stdout.decode()
    assert_same(via("ls", f"s3://{b}/s5/").stdout.decode(), r.stdout.decode(), "ls after rm")
    via("rm", f"s3://{b}/s5/*")
    r = direct("ls", f"s3://{b}/s5/", check=False)
    assert b"big.bin" not in r.stdout
