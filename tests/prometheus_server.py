"""A real Prometheus server for the tests (Debian's ``prometheus`` package),
started on a free port of 127.0.0.1 with a config and a storage directory of
its own, scraping the targets it is given every half second, and evaluating
rule files as often; queried through its HTTP API."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from .waits import PATIENCE, wait_until

INTERVAL = "500ms"  # scrape and rule evaluation


def binary() -> str | None:
    return shutil.which("prometheus")


def promtool() -> str | None:
    return shutil.which("promtool")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    def __init__(self, directory: Path, targets: dict[str, str], rules: list[Path] = ()):
        """``targets``: scrape job name -> host:port."""
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": INTERVAL,
                "scrape_timeout": INTERVAL,
                "evaluation_interval": INTERVAL,
            },
            "rule_files": [str(path) for path in rules],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrometheusServer:
        self.log = open(self.directory / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [binary() or "prometheus", f"--config.file={self.config}",
             f"--storage.tsdb.path={self.directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until(self._ready, "Prometheus to be ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.output()
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=PATIENCE).status_code == 200
        except httpx.TransportError:
            return False

    def output(self) -> str:
        return (self.directory / "prometheus.log").read_text()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(PATIENCE)
        self.log.close()

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=PATIENCE)
        body = response.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> dict[tuple, float]:
        """An instant query: the labels of each series (sorted pairs) -> its value."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        data = self.api("query", **params)
        assert data["resultType"] == "vector", data
        return {
            tuple(sorted(item["metric"].items())): float(item["value"][1])
            for item in data["result"]
        }

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The one value of a query that gives at most one series."""
        found = self.query(expr, at)
        assert len(found) <= 1, found
        return next(iter(found.values()), None)

    def settled(self, job: str) -> float | None:
        """The time of the ``job`` target's last scrape, if every target's
        last scrape by then succeeded (one that timed out, on a busy machine,
        marks its series stale: they would be missing at that time)."""
        at = self.value(f'timestamp(up{{job="{job}"}})')
        return at if at and self.value("min(up)", at) == 1 else None

    def rules(self) -> dict[str, dict]:
        """Alerting rules by name, as the rules API reports them (state, health, alerts)."""
        groups = self.api("rules", type="alert")["groups"]
        return {rule["name"]: rule for group in groups for rule in group["rules"]}

    def last_evaluation(self) -> str:
        groups = self.api("rules")["groups"]
        return min(group["lastEvaluation"] for group in groups)
