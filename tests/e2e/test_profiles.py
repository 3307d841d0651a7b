"""Profiles and layered configuration with the real binary: `--profile`, `--config-dir` (and the
working directory's `config/`), `--check` provenance, and what the prod profiles turn on.

Every rangecache here runs in a temporary working directory, so the repository's `config/` (and a
developer's `config/local.toml` in it) is read only where a test asks for it.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import tomllib
from pathlib import Path

import pytest

from helpers import procs
from helpers.clients import s3_client
from helpers.proxy import REPO, RangeCache, base_config, binary, to_toml
from helpers.rawhttp import Closed, exchange, request_bytes
from helpers.tls_ca import TestCA
from test_operations import read_log
from test_tls_listener import TlsConn, boto, https

pytestmark = pytest.mark.needs_binary


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANGECACHE_", "MONOIO_", "AWS_"))}
    env.update(extra)
    return env


def check(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary()), "--check", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=env or clean_env(), stdin=subprocess.DEVNULL)


def provenance(listing: str) -> dict[str, tuple[str, str]]:
    """`--check` lines as {key: (value, layer)}."""
    out = {}
    for line in listing.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        assignment, layer = line.rsplit("   # from ", 1)
        key, value = assignment.split(" = ", 1)
        out[key] = (value.strip(), layer)
    return out


@pytest.fixture(scope="module")
def bucket(direct_s3):
    name = f"profiles-{os.getpid() % 10000}"
    direct_s3.create_bucket(Bucket=name)
    direct_s3.put_object(Bucket=name, Key="k", Body=b"profiles " * 1000)
    return name


def test_check_names_the_layer_of_every_value(tmp_path):
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "default.toml").write_text('[server]\nworkers = 2\n[cache]\nmemory = "512MiB"\n')
    (conf / "prod.toml").write_text('[server]\nlisten = "127.0.0.1:9000"\n[origin]\n'
                                    'access_key_id = "AKPROD"\nsecret_access_key = "prod-secret-value"\n')
    (conf / "local.toml").write_text('[cache]\nmemory = "256MiB"\n')
    extra = tmp_path / "extra.toml"
    extra.write_text('[server]\nidle_timeout = "90s"\n[[bucket]]\nname = "b1"\nregion = "eu-west-1"\n')

    # ./config is the default directory; RANGECACHE_PROFILE picks the profile.
    done = check("--config", str(extra), "--domain", "s3.test", cwd=tmp_path,
                 env=clean_env(RANGECACHE_PROFILE="prod", RANGECACHE_CACHE__METADATA_TTL="5s",
                               AWS_EC2_METADATA_DISABLED="true"))
    assert done.returncode == 0, done.stderr
    assert "prod-secret-value" not in done.stdout
    p = provenance(done.stdout)
    assert p["server.workers"] == ("2", "config/default.toml")
    assert p["server.listen"] == ('"127.0.0.1:9000"', "config/prod.toml")
    assert p["origin.secret_access_key"] == ('"<redacted>"', "config/prod.toml")
    assert p["cache.memory"] == ('"256MiB"', "config/local.toml")
    assert p["server.idle_timeout"] == ('"90s"', str(extra))
    assert p["bucket"][1] == str(extra)
    assert p["cache.metadata_ttl"] == ('"5s"', "RANGECACHE_CACHE__METADATA_TTL")
    assert p["server.domain"] == ('"s3.test"', "--domain")
    assert p["log.access"] == ('"stdout"', "profile prod")
    assert p["auth.mode"] == ('"sigv4"', "profile prod")
    assert p["server.body_timeout"][1] == "built-in defaults"
    assert "# profile: prod (RANGECACHE_PROFILE)" in done.stdout
    # The listing is itself a configuration file.
    parsed = tomllib.loads(done.stdout)
    assert parsed["server"]["listen"] == "127.0.0.1:9000" and parsed["bucket"][0]["name"] == "b1"

    # --profile beats RANGECACHE_PROFILE; --config-dir replaces ./config (dev.toml absent: skipped).
    done = check("--profile", "dev", "--config-dir", str(conf), cwd=REPO,
                 env=clean_env(RANGECACHE_PROFILE="prod"))
    assert done.returncode == 0, done.stderr
    p = provenance(done.stdout)
    assert p["auth.mode"] == ('"none"', "profile dev")
    assert p["server.pin_cores"] == ("false", "profile dev")
    assert p["cache.memory"] == ('"256MiB"', f"{conf}/local.toml")
    assert p["server.listen"] == ('"127.0.0.1:8080"', "built-in defaults")
    assert f"{conf}/dev.toml (not found)" in done.stdout


def test_the_shipped_default_toml_changes_nothing_but_keeps_profiles(tmp_path):
    """From the repository root (the README's commands) `config/default.toml` is the default.toml
    layer: it must equal the built-in defaults and leave the keys profiles set to the profiles.
    (A copy is used, so a developer's own config/local.toml cannot fail this test.)"""
    shipped = tmp_path / "shipped"
    (shipped / "config").mkdir(parents=True)
    (shipped / "config" / "default.toml").write_text((REPO / "config" / "default.toml").read_text())
    empty = tmp_path / "empty"
    empty.mkdir()
    for profile in ("default", "dev", "prod"):
        with_file = check("--profile", profile, cwd=shipped)
        isolated = check("--profile", profile, "--config-dir", str(empty), cwd=tmp_path)
        assert with_file.returncode == 0 and isolated.returncode == 0, (with_file.stderr, isolated.stderr)
        assert tomllib.loads(with_file.stdout) == tomllib.loads(isolated.stdout), profile
    listing = provenance(check("--profile", "prod", cwd=shipped).stdout)
    assert listing["log.access"] == ('"stdout"', "profile prod")
    assert listing["server.listen"] == ('"127.0.0.1:8080"', "config/default.toml")


def test_unmet_profile_requirements_and_bad_files_are_startup_errors(tmp_path):
    conf = tmp_path / "config"
    conf.mkdir()
    done = check("--profile", "prod-tls", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "rangecache: [validate_config] server.tls.cert_file: profile prod-tls requires TLS on the client "
        "listener: set server.tls.cert_file and server.tls.key_file")
    done = check("--profile", "dev", "--listen", "0.0.0.0:0", cwd=tmp_path)
    assert "[validate_config] server.listen: profile dev listens on loopback addresses only" in done.stderr
    (conf / "local.toml").write_text("[server]\nworkers = \"many\"\n")
    done = check(cwd=tmp_path)
    assert done.returncode == 1
    assert "rangecache: [parse_config] config/local.toml: line 2: " in done.stderr, done.stderr
    done = check("--config-dir", str(tmp_path / "missing"), cwd=tmp_path)
    assert done.stderr.strip().endswith(f"[load_config] --config-dir {tmp_path / 'missing'}: No such file or directory")


def start(tmp_path: Path, name: str, cfg: dict, profile: str, files: dict[str, str]) -> RangeCache:
    """rangecache with `--profile` and a config directory holding `files` ({name: TOML}); the
    --config file is empty, so every value comes from the profile and the directory."""
    conf = tmp_path / f"{name}-config"
    conf.mkdir()
    for fname, text in files.items():
        (conf / fname).write_text(text)
    return RangeCache(tmp_path / name, config=cfg, config_text="",
                      args=["--profile", profile, "--config-dir", str(conf)])


def test_prod_is_default_deny_with_the_access_log_on(seaweed, bucket, tmp_path):
    cfg = base_config(seaweed.endpoint)
    p = start(tmp_path, "prod", cfg, "prod", {"prod.toml": to_toml(cfg)})
    try:
        p.start()
        assert s3_client(p.endpoint).get_object(Bucket=bucket, Key="k")["Body"].read() == b"profiles " * 1000
        # Workers hand their lines over every 200 ms, each its own batch: the first line is
        # written before the second request, so the two come in request order.
        read_log(p.stdout_path, 1)
        r = exchange(p.hostport, request_bytes("GET", f"/{bucket}/k", p.hostport, sign=False))
        assert r is not None and r.status == 403 and b"<Code>AccessDenied</Code>" in r.body, r
        recs = read_log(p.stdout_path, 2)
        assert [(x["status"], x["key"]) for x in recs[:2]] == [(200, "k"), (403, "k")]
    finally:
        p.terminate()


def test_prod_mtls_requires_a_client_certificate(seaweed, bucket, tmp_path):
    ca = TestCA(tmp_path / "ca")
    server = ca.issue_server("server")
    client = ca.issue_client("client")
    cfg = base_config(seaweed.endpoint)
    tls = f'[server.tls]\ncert_file = "{server.cert}"\nkey_file = "{server.key}"\n'
    files = {"default.toml": to_toml(cfg) + tls,
             "prod-mtls.toml": f'[server.tls]\nclient_ca_file = "{ca.ca_file}"\n'}

    # prod-tls.toml is not read by prod-mtls: without the CA bundle the profile refuses to start.
    bad = start(tmp_path, "mtls-missing", cfg, "prod-mtls", {"default.toml": files["default.toml"]})
    with pytest.raises(RuntimeError, match=r"\[validate_config\] server.tls.client_ca_file: profile prod-mtls"):
        bad.start()

    p = start(tmp_path, "mtls", cfg, "prod-mtls", files)
    try:
        p.start()
        # With a client certificate from the CA: served over https, signed as always.
        ok = boto(https(p), ca.ca_file, client_cert=(str(client.cert), str(client.key)))
        assert ok.get_object(Bucket=bucket, Key="k")["Body"].read() == b"profiles " * 1000
        # Without one: refused in the handshake.
        with pytest.raises((ssl.SSLError, OSError, Closed)):
            with TlsConn(p.listen, ca.ca_file) as c:
                c.get(f"/{bucket}/k", p.listen)
        recs = read_log(p.stdout_path, 1)
        assert recs[-1]["status"] == 200
    finally:
        p.terminate()
