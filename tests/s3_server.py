"""A local S3-compatible server (moto's, from the `cluster` extra) for DVC's s3:// remotes.

`S3Server(folder)` starts `moto_server` on 127.0.0.1 at a free port, creates buckets and
stops exactly the process it started. `env()` is what a client needs: fixed test
credentials, and no instance-metadata lookups or shared AWS files (nothing leaves the
machine; a developer's ~/.aws is not read).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "fclf-test-key"
SECRET_KEY = "fclf-test-secret"


def need_cluster_extra() -> None:
    """Skip, saying why, where the `cluster` extra (dvc-s3, moto[server]) is missing."""
    import pytest

    for module in ("dvc_s3", "moto", "boto3"):
        pytest.importorskip(module, reason=f"no {module}: s3:// tests need the cluster extra, "
                            "pip install -e '.[cluster]' (`make test-cluster` installs it)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def no_aws_env(folder: Path) -> dict[str, str]:
    """AWS settings that make a client use only what it is given: no metadata service (a
    link-local address), no shared config or credentials files."""
    return {"AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(folder / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-aws-credentials"),
            "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Server:
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, credentials: bool = True) -> dict[str, str]:
        env = no_aws_env(self.folder)
        if credentials:
            env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
        return env

    def start(self, timeout: float = 60.0) -> S3Server:
        server = Path(sys.executable).parent / "moto_server"
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "moto_server.log", "wb")  # noqa: SIM115 (the server's lifetime)
        self.process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **self.env()})
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.endpoint, timeout=2):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not start: " + (
                        self.folder / "moto_server.log").read_text()[-500:]) from None
                time.sleep(0.2)

    def _client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")

    def create_bucket(self, name: str) -> None:
        self._client().create_bucket(Bucket=name)

    def objects(self, bucket: str) -> list[str]:
        pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


@contextmanager
def s3_bucket(folder: Path, bucket: str) -> Iterator[S3Server]:
    """A running server (its files in `folder`) with an empty `bucket`; skips, saying why,
    without the cluster extra."""
    need_cluster_extra()
    server = S3Server(folder).start()
    try:
        server.create_bucket(bucket)
        yield server
    finally:
        server.stop()
