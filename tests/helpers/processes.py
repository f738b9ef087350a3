"""`worker.py` and `starter.py` as the separate programs people run, configured only through
the environment (SPEC section 7): the environment of one deployment, a `starter.py` run and its
output, a `worker.py` process with its log, and a change parked through the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from subchange.dev.devstack import ROOT
from tests.helpers.documents import (
    DECLINED_ON_CHARGE_CARD,
    SELLER,
    admin_email,
    org_document,
    write_fixture,
)
from tests.helpers.services import STRIPE_API_KEY

READY_LINE = "worker polling task queue"
PAUSED_LINE = "fault injection: pausing at"


def service_env(*, temporal_address: str, database_url: str, localstripe_url: str,
                smtp_port: int, task_queue: str, **extra: str) -> dict[str, str]:
    """The configuration of one deployment: every variable set, so nothing leaks in from the
    developer's environment or a `.env` file."""
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default",
        "TASK_QUEUE": task_queue, "DATABASE_URL": database_url,
        "STRIPE_API_KEY": STRIPE_API_KEY, "STRIPE_API_BASE": localstripe_url,
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port),
        "FAULT_PAUSE_POINTS": "", "PAYLOAD_KEYS": "", "CODEC_SERVER_TOKEN": "",
        "PYTHONUNBUFFERED": "1",
        # The workers of the suite share a dev server and a database: a scheduled sweep would
        # settle what a test leaves ended on purpose (for `release-claim`). Ten years, aligned
        # to the epoch: the schedule next fires in December 2029.
        "CHANGE_SWEEP_EVERY": "P3650D",
        **SELLER,
        **extra,
    }


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> CliResult:
    done = subprocess.run([sys.executable, "starter.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return CliResult(done.returncode, done.stdout, done.stderr)


def change_args(org: str, product: str, *what: str, by: str | None = None) -> list[str]:
    """`starter.py change` of `org`'s `product`, asked by `by` or by the org's admin
    (documents.admin_email); `what` says the change and the options: "--seats", "12", "--wait"."""
    return ["change", "--org", org, "--product", product, "--by", by or admin_email(org), *what]


class ServiceProcess:
    """One of the service's programs (`script`) with its log in a file the test can read."""

    script = ""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> Self:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen([sys.executable, self.script], cwd=ROOT,
                                            env=self.env, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as when a machine dies: no cleanup, no graceful shutdown."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()


class WorkerProcess(ServiceProcess):
    """`python worker.py`."""

    script = "worker.py"

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if out.count(text) >= count:
                return out
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}):\n{out}")
            time.sleep(0.1)
        raise AssertionError(f"worker log never showed {text!r} x{count}:\n{self.output()}")

    @contextlib.contextmanager
    def running(self) -> Iterator[WorkerProcess]:
        """Started and polling for the block; stopped afterwards, whatever happened."""
        try:
            self.start().wait_for(READY_LINE)
            yield self
        finally:
            self.stop()


def park_a_change(env: dict[str, str], directory: Path, prefix: str = "runbook"
                  ) -> tuple[str, str]:
    """Load an org whose card is declined at charge time and ask for 10 → 12 seats: the change
    waits for payment (its next attempt a day later), where support may retry or cancel it.
    Returns (org id, workflow id)."""
    org = f"{prefix}-{uuid.uuid4().hex[:6]}"
    document = org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                         "products": ["one"]}],
                            subscriptions=[{"product": "one", "plan": "enterprise", "seats": 10,
                                            "pricing_model": "flexible_user",
                                            "card": DECLINED_ON_CHARGE_CARD}])
    assert run_cli(env, "load", str(write_fixture(directory / f"{org}.json", document))).code == 0
    started = run_cli(env, *change_args(org, "one", "--seats", "12", "--wait"))
    assert started.code == 3, started
    return org, started.json["workflow_id"]


class ApiProcess(ServiceProcess):
    """`python api.py` on API_HOST:API_PORT of `env`; `running()` waits until /healthz answers
    200 (Temporal and the database reached)."""

    script = "api.py"

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__(env, log)
        self.base_url = f"http://{env.get('API_HOST', '127.0.0.1')}:{env['API_PORT']}"

    def wait_healthy(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        answer: object = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"api.py exited ({self.process.returncode}):\n"
                                     f"{self.output()}")
            try:
                answer = httpx.get(f"{self.base_url}/healthz", timeout=5)
                if answer.status_code == 200:
                    return
            except httpx.TransportError as error:
                answer = error
            time.sleep(0.1)
        raise AssertionError(f"api.py never healthy ({answer}):\n{self.output()}")

    @contextlib.contextmanager
    def running(self) -> Iterator[ApiProcess]:
        try:
            self.start().wait_healthy()
            yield self
        finally:
            self.stop()
