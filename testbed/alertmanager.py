"""A real Alertmanager on loopback for tests and benchmarks, routing every alert to one webhook
(a receiver of the caller's own) and sending resolved notifications too.

Skipped by callers when the binary is absent (Debian package `prometheus-alertmanager`;
.ci/run installs it). Clustering is off: it listens on its web port only.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import yaml

from .procs import Service, free_port, wait_until


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


class AlertmanagerServer:
    """Notifies `webhook` of each alert group, grouped by alert name, after `group_wait`."""

    def __init__(self, workdir: Path, webhook: str, group_wait: str = "1s") -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = workdir / "alertmanager.yml"
        route = {
            "receiver": "test",
            "group_by": ["alertname"],
            "group_wait": group_wait,
            "group_interval": group_wait,
            "repeat_interval": "1h",
        }
        receivers = [{"name": "test", "webhook_configs": [{"url": webhook, "send_resolved": True}]}]
        self.config.write_text(yaml.safe_dump({"route": route, "receivers": receivers}))
        self.service: Service | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = alertmanager_binary() or "prometheus-alertmanager"
        self.service = Service(
            f"alertmanager-{self.port}",
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",
                "--cluster.listen-address=",
            ],
            {},
            self.workdir,
        )
        wait_until(self.ready, 30, what="alertmanager to be ready")

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts it holds that have not ended (GET /api/v2/alerts)."""
        answer: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json()
        return answer

    def stop(self) -> None:
        if self.service:
            self.service.stop()
