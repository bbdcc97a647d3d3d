"""A real Prometheus server on loopback scraping one target, and promtool, for tests.

Skipped by callers when the binaries are absent (Debian package `prometheus`; .ci/run installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from .procs import Service, free_port, wait_until


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def promtool_binary() -> str | None:
    return shutil.which("promtool")


def check_metrics(text: bytes) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on an exposition: exit 0 when it is valid and well formed."""
    binary = promtool_binary() or "promtool"
    return subprocess.run(
        [binary, "check", "metrics"], input=text.decode(), capture_output=True, text=True, timeout=30
    )


class PrometheusServer:
    """Scrapes `target` (host:port) at `path` every second with a bearer token; its data in `workdir`."""

    def __init__(self, workdir: Path, target: str, path: str, token: str) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = workdir / "prometheus.yml"
        scrape = {
            "job_name": "fleetdeck",
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "metrics_path": path,
            "authorization": {"type": "Bearer", "credentials": token},
            "static_configs": [{"targets": [target]}],
        }
        self.config.write_text(
            yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]})
        )
        self.service: Service | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = prometheus_binary() or "prometheus"
        self.service = Service(
            f"prometheus-{self.port}",
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            {},
            self.workdir,
        )
        wait_until(self.ready, 30, what="prometheus to be ready")

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        if answer["status"] != "success":
            raise RuntimeError(f"prometheus refused {expr!r}: {answer}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health and last error."""
        active: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"][
            "activeTargets"
        ]
        return active

    def stop(self) -> None:
        if self.service:
            self.service.stop()
