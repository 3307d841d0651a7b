"""Client construction with explicit credentials, region, path-style and no retries."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
from botocore.config import Config

from .seaweed import ACCESS_KEY, REGION, SECRET_KEY

# Never let an SDK probe the instance-metadata address.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def s3_client(endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
              session_token: str | None = None, **config_kw):
    cfg = dict(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        # No retries: a retry would hide a proxy bug behind a second attempt.
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
    )
    cfg.update(config_kw)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        region_name=REGION,
        config=Config(**cfg),
    )


def clean_aws_env(tmp: Path, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
    """Environment for CLI clients (awscli, s5cmd): explicit credentials, private config files."""
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "aws-config"
    creds = tmp / "aws-credentials"
    cfg.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    creds.write_text(f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(cfg),
        AWS_SHARED_CREDENTIALS_FILE=str(creds),
        AWS_ACCESS_KEY_ID=access_key,
        AWS_SECRET_ACCESS_KEY=secret_key,
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
        NO_PROXY="*",
    )
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    return env
