"""Start the latency service (``uvicorn api.main:app``) in a subprocess and wait for ``/healthz``.

The one way the pipeline, the tests and the benches run a real service on 127.0.0.1; it runs the app
by name in another process, so nothing here imports ``api``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """The service exited or did not become healthy; the message holds the end of its log."""


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class Service:
    """``uvicorn APP`` on 127.0.0.1 with its own database, healthy once started; stopped by ``stop()`` or ``with``.

    Args:
        db_url: the database it serves (``SPLITNAS_DATABASE_URL`` of the process); None keeps the environment's.
        port: default a free one.
        log: file for its output (default a temporary file); errors quote its end.
        env: more environment variables, e.g. ``SPLITNAS_API_MAX_BATCH``.
        app: the ASGI app, ``module:attribute``; ``health`` the path that answers 200 once it is up.
        uvicorn_args: more uvicorn options, e.g. ``("--workers", "2")``.
    """

    def __init__(
        self, db_url: str | None = None, *, port: int | None = None, log: Path | None = None,
        env: Mapping[str, str] | None = None, app: str = "api.main:app", health: str = "/healthz",
        uvicorn_args: Sequence[str] = (), cwd: Path | None = None, timeout: float = 90.0,
    ) -> None:
        self.db_url = db_url
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        if log is None:
            handle, name = tempfile.mkstemp(prefix="splitnas-service-", suffix=".log")
            os.close(handle)
            log = Path(name)
        self.log = Path(log)
        environment = {**os.environ, **(env or {})}
        if db_url is not None:
            environment["SPLITNAS_DATABASE_URL"] = db_url
        self._log = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(self.port), "--no-access-log",
             "--log-level", "warning", *uvicorn_args],
            stdout=self._log, stderr=subprocess.STDOUT, env=environment, cwd=cwd,
        )
        try:
            self._wait(health, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait(self, health: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"the service exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + health, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise ServiceError(f"the service did not answer {health} within {timeout:g} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        return "\n".join(text) or f"(nothing in {self.log})"

    def stop(self) -> None:
        """Terminate the server (kill it after 10 s) and close its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
