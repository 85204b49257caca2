"""Runs Debian's Prometheus server against a network, with Straits' console pages.

``PrometheusServer(config, data_dir, address)`` builds the command; ``start()`` starts
the process and waits until it answers ``/-/ready``; ``stop()`` ends it. The console
pages (``deploy/prometheus/consoles``) and their library
(``deploy/prometheus/console_libraries``) are served at ``/consoles/<page>.html``.
Used by ``straits network up`` (so ``make run`` shows the dashboards) and by tests.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ledger.errors import expected
from services.common.errors import ConfigError, UnavailableError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
CONSOLES = DEPLOY / "consoles"
CONSOLE_LIBRARIES = DEPLOY / "console_libraries"
PAGES = ("overview", "settlement", "validators", "bank")


def binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        raise ConfigError(
            expected("Debian's prometheus server on PATH (make prometheus)", "none"),
            field="prometheus",
        )
    return path


class PrometheusServer:
    def __init__(self, config: Path, data_dir: Path, address: str, log: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.address = address
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def console(self, page: str) -> str:
        return f"{self.url}/consoles/{page}.html"

    def command(self) -> list[str]:
        return [
            binary(),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={self.address}",
            f"--web.console.templates={CONSOLES}",
            f"--web.console.libraries={CONSOLE_LIBRARIES}",
        ]

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise UnavailableError(
                    f"prometheus exited with status {self.process.returncode}; see {self.log}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise UnavailableError(
                    f"prometheus not ready after {timeout:.0f} s; see {self.log}"
                )
            time.sleep(0.2)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, grace: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
