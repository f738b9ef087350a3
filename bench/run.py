"""The throughput benchmark: full changes against the platform's floor, on one embedded stack.

It starts the stack the demo runs (Temporal dev server, localstripe, SMTP server; SQLite or
PostgreSQL as the application database), K service workers (worker.py) and K workers of the bare
seven-activity workflow (bench/bare.py) on the same server, loads the organisations, then runs:

- a burst of N bare workflows started at once, then N full changes started at once (each a
  seat increase charged by card, applied and invoiced), for throughput and latency under load;
- M single changes one after another, of each kind, for the latency of a change alone; and the
  same full change again on an organisation of many users (the indexed-query target).

CPU is read from /proc (user + system time of each process) before and after each phase, so a
phase's "worker CPU per change" is what the workers of that kind spent on it, divided by its
changes. It prints a table and writes the JSON (`--json`). Run `make bench` or
`python -m bench --help`.

With `--api` it also starts `python api.py` (the HTTP API of SPEC section 12) beside the stack
and starts the same burst over HTTP (`POST /v1/changes`, an Idempotency-Key each) as through the
Temporal client, alternating, then single starts each way: the API's added latency to a
change's start, the HTTP burst's throughput against the client burst's, and the API process's
CPU per request and RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dateutil.relativedelta import relativedelta

from subchange.dev.devstack import (
    DEMO_SELLER,
    ROOT,
    free_port,
    spawn,
    start_localstripe,
    start_smtp,
    start_temporal,
    stop_process,
)
from subchange.payload_keys import new_key_setting

GOOD_CARD = "4242424242424242"
BARE_QUEUE = "bench-bare"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Processes:
    """The stack's processes by role; CPU is summed over a role."""
    roles: dict[str, list[subprocess.Popen]] = field(default_factory=dict)

    def add(self, role: str, process: subprocess.Popen) -> None:
        self.roles.setdefault(role, []).append(process)

    def cpu(self) -> dict[str, float]:
        return {role: sum(cpu_seconds(p.pid) for p in processes)
                for role, processes in self.roles.items()}

    def check_alive(self) -> None:
        for role, processes in self.roles.items():
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a {role} process exited with code {process.returncode}")

    def stop(self) -> None:
        for processes in reversed(list(self.roles.values())):
            for process in processes:
                stop_process(process)


def wait_for_line(process: subprocess.Popen, log: Path, text: bytes, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.name}: exited with code {process.returncode}")
        if text in log.read_bytes():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{log.name}: not ready within {timeout}s")


def fixture(orgs: int, *, big_org_users: int) -> dict[str, Any]:
    """`orgs` organisations of 10 users and 10 seats of Zoho One (flexible user pricing, a good
    card), plus `solo` (10 users) and `big` (big_org_users users, 10 of them on the product) for
    the single changes."""
    start = datetime.now(UTC).date().replace(day=1)
    subscription = {"product": "one", "plan": "enterprise", "seats": 10,
                    "pricing_model": "flexible_user", "billing_period": "monthly",
                    "period_start": str(start), "period_end": str(start + relativedelta(months=1)),
                    "payment_method": "online", "card": GOOD_CARD}

    def org(org_id: str, users: int) -> dict[str, Any]:
        return {"id": org_id, "name": f"Bench {org_id}", "currency": "JPY", "time_zone": "UTC",
                "billing_email": f"billing@{org_id}.example",
                "users": [{"email": f"admin@{org_id}.example", "role": "admin",
                           "products": ["one"]}]
                + [{"email": f"user{n}@{org_id}.example", "products": ["one"] if n < 10 else []}
                   for n in range(1, users)],
                "subscriptions": [subscription]}

    return {"orgs": [org(f"b{n:05d}", 10) for n in range(orgs)]
            + [org("solo", 10), org("big", big_org_users)]}


def quantiles(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(values, q / 100), 2) for q in (50, 95, 99)}


@dataclass
class Phase:
    name: str
    changes: int
    seconds: float
    latencies_ms: list[float]
    cpu: dict[str, float]
    failures: list[str]
    worker_cpu_each: list[float]  # singles: the workers' CPU around each change, in turn
    # --api: how long each start took to answer (start_workflow returned, or POST answered)
    starts_ms: list[float] = field(default_factory=list)

    def summary(self, worker_role: str) -> dict[str, Any]:
        return {"changes": self.changes, "seconds": round(self.seconds, 3),
                "throughput_per_s": round(self.changes / self.seconds, 2),
                "latency_ms": {f"p{q}": round(percentile(self.latencies_ms, q / 100), 1)
                               for q in (50, 95, 99)},
                "worker_cpu_ms_per_change": round(1000 * self.cpu[worker_role] / self.changes, 1),
                "server_cpu_ms_per_change": round(1000 * self.cpu["temporal"] / self.changes, 1),
                "gateway_cpu_ms_per_change": round(1000 * self.cpu["localstripe"] / self.changes,
                                                   1),
                "smtp_cpu_ms_per_change": round(1000 * self.cpu["smtp"] / self.changes, 1),
                **({"worker_cpu_ms_median": round(1000 * statistics.median(self.worker_cpu_each),
                                                  1)} if self.worker_cpu_each else {}),
                **({"start_latency_ms": quantiles(self.starts_ms)} if self.starts_ms else {}),
                **({"api_cpu_ms_per_change": round(1000 * self.cpu["api"] / self.changes, 2)}
                   if "api" in self.cpu else {}),
                "failures": self.failures[:5], "failed": len(self.failures)}


class Bench:
    def __init__(self, args: argparse.Namespace, var: Path) -> None:
        self.args, self.var = args, var
        self.processes = Processes()
        self.env: dict[str, str] = {}
        self.seats: dict[str, int] = {}

    # -- the stack ------------------------------------------------------------------------------
    def start(self) -> None:
        # As the worker image runs it: `pip install .` compiles the bytecode, so a sandbox that
        # imports the workflow module for each change reads it instead of compiling the source.
        for package in ("workflows", "subchange", "activities", "state_machines"):
            compileall.compile_dir(ROOT / package, quiet=1)
        logs = self.var / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        port = free_port()
        db_file = None if self.args.in_memory else self.var / "temporal.db"
        self.processes.add("temporal", start_temporal(db_file, port, free_port(),
                                                      logs / "temporal.log"))
        stripe, stripe_url = start_localstripe(log=logs / "localstripe.log")
        self.processes.add("localstripe", stripe)
        smtp, smtp_port = start_smtp(self.var / "mail", log=logs / "smtp.log")
        self.processes.add("smtp", smtp)
        self.env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "DATABASE_URL": self.database_url(),
                    "STRIPE_API_BASE": stripe_url, "SMTP_HOST": "127.0.0.1",
                    "SMTP_PORT": str(smtp_port), "PAYLOAD_KEYS": new_key_setting("bench"),
                    "CODEC_SERVER_TOKEN": "bench", "METRICS_BIND_ADDRESS": "",
                    "SANDBOX_CONTEXT_SHORTCUT": str(self.args.sandbox_context_shortcut).lower(),
                    **DEMO_SELLER}
        self.load()
        for n in range(self.args.workers):
            log = logs / f"worker-{n}.log"
            process = spawn([sys.executable, str(ROOT / "worker.py")], log, self.env)
            wait_for_line(process, log, b"worker polling task queue")
            self.processes.add("worker", process)
            log = logs / f"bare-worker-{n}.log"
            process = spawn([sys.executable, "-m", "bench.bare", self.env["TEMPORAL_ADDRESS"],
                             BARE_QUEUE], log)
            wait_for_line(process, log, b"worker polling task queue")
            self.processes.add("bare_worker", process)
        if self.args.api:
            self.start_api(logs / "api.log")

    def start_api(self, log: Path) -> None:
        """`python api.py` as operators run it, and a backend key made with `starter.py`."""
        import httpx  # only for --api

        created = subprocess.run(
            [sys.executable, "starter.py", "api-key", "create", "--owner", "bench@vendor.example",
             "--role", "backend"], cwd=ROOT, check=True, env={**os.environ, **self.env},
            capture_output=True, text=True)
        self.api_key = json.loads(created.stdout)["key"]
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        process = spawn([sys.executable, str(ROOT / "api.py")], log,
                        {**self.env, "API_HOST": "127.0.0.1", "API_PORT": str(port)})
        self.processes.add("api", process)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"api.py exited with code {process.returncode}")
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("api.py not healthy within 60s")
            time.sleep(0.1)
        # One request with the key first, as the workers' warm-up changes: the key's secret is
        # verified (scrypt, 16 MB and some 50 ms) once, then found in the API's cache. Without
        # it, every request of the first burst verifies it at once (bench/README.md).
        answer = httpx.get(f"{self.api_url}/v1/changes", params={"page_size": 1}, timeout=30,
                           headers={"Authorization": f"Bearer {self.api_key}"})
        answer.raise_for_status()

    def database_url(self) -> str:
        if self.args.database == "sqlite":
            return f"sqlite:///{self.var / 'subchange.db'}"
        name = f"subchange_bench_{os.getpid()}"
        self.postgres("CREATE", name)
        return f"{self.args.postgres_url}/{name}"

    def postgres(self, verb: str, name: str) -> None:
        from sqlalchemy import create_engine, text  # only for the PostgreSQL run
        engine = create_engine(f"{self.args.postgres_url}/postgres", isolation_level="AUTOCOMMIT",
                               hide_parameters=True)
        with engine.connect() as connection:
            if verb == "DROP":
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()

    def load(self) -> None:
        path = self.var / "fixture.json"
        orgs = self.args.changes + self.args.warmup
        path.write_text(json.dumps(fixture(orgs, big_org_users=self.args.big_org_users)))
        started = time.monotonic()
        subprocess.run([sys.executable, "starter.py", "load", str(path)], cwd=ROOT, check=True,
                       env={**os.environ, **self.env}, stdout=subprocess.DEVNULL)
        print(f"loaded {orgs + 2} organisations in {time.monotonic() - started:.1f}s",
              file=sys.stderr, flush=True)
        self.seats = {f"b{n:05d}": 10 for n in range(orgs)} | {"solo": 10, "big": 10}

    def stop(self) -> None:
        self.processes.stop()
        if self.args.database == "postgresql":
            self.postgres("DROP", f"subchange_bench_{os.getpid()}")

    # -- the workloads --------------------------------------------------------------------------
    async def connect(self) -> None:
        os.environ.update(self.env)
        from temporalio.client import Client

        from subchange.app.client import connect
        from subchange.settings import Settings
        self.settings = Settings()
        self.client = await connect(self.settings)
        self.bare_client = await Client.connect(self.env["TEMPORAL_ADDRESS"])
        if self.args.api:
            import httpx
            self.http = httpx.AsyncClient(
                base_url=self.api_url, timeout=120,
                headers={"Authorization": f"Bearer {self.api_key}"},
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None))

    def next_change(self, org_id: str) -> dict[str, Any]:
        """One seat more for org_id: the change's body (section 7's input without its id)."""
        self.seats[org_id] += 1
        return {"org_id": org_id, "product": "one", "requested_by": f"admin@{org_id}.example",
                "change": {"kind": "seats", "seats": self.seats[org_id]}}

    async def full_change(self, org_id: str, starts: list[float] | None = None) -> str | None:
        """One seat more for org_id, as `starter.py change` starts it; None when it completed.
        `starts` gets how long start_workflow took to return (ms)."""
        from temporalio.common import WorkflowIDReusePolicy

        from subchange.app.changes import static_details
        from subchange.domain.contracts import WORKFLOW_TYPE, ChangeRequest, ChangeResult
        from subchange.domain.search_attributes import initial_search_attributes
        body = self.next_change(org_id)
        request = ChangeRequest.model_validate({
            "request_id": f"bench-{org_id}-{self.seats[org_id]}-{os.getpid()}", **body})
        started = time.perf_counter()
        handle = await self.client.start_workflow(
            WORKFLOW_TYPE, request.model_dump(mode="json"), id=request.workflow_id,
            result_type=ChangeResult, task_queue=self.settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(request),
            static_summary=f"{request.describe()} (by {request.requested_by})",
            static_details=static_details(request))
        if starts is not None:
            starts.append(1000 * (time.perf_counter() - started))
        return await self.settled(org_id, handle)

    async def full_change_over_http(self, org_id: str, starts: list[float]) -> str | None:
        """The same change started as a backend does: `POST /v1/changes` with an
        Idempotency-Key; its end read through the Temporal client, as the client burst's is."""
        from subchange.domain.contracts import ChangeResult
        body = self.next_change(org_id)
        key = f"bench-{org_id}-{self.seats[org_id]}-{os.getpid()}"
        started = time.perf_counter()
        answer = await self.http.post("/v1/changes", json=body,
                                      headers={"Idempotency-Key": key})
        starts.append(1000 * (time.perf_counter() - started))
        if answer.status_code != 202:
            return f"{org_id}: POST /v1/changes answered {answer.status_code}: {answer.text[:200]}"
        handle = self.client.get_workflow_handle(answer.json()["workflow_id"],
                                                 result_type=ChangeResult)
        return await self.settled(org_id, handle)

    async def settled(self, org_id: str, handle: Any) -> str | None:
        result = await handle.result()
        if result.status != "completed" or result.invoice is None:
            return f"{org_id}: {result.status} {result.reason_code or ''}"
        return None

    async def bare(self, name: str) -> str | None:
        from bench.bare import BareWorkflow
        result = await self.bare_client.execute_workflow(BareWorkflow.run, name, id=name,
                                                         task_queue=BARE_QUEUE)
        return None if result == name else f"{name}: returned {result!r}"

    async def phase(self, name: str, runs: list[Callable[[], Awaitable[str | None]]], *,
                    concurrent: bool, role: str = "worker",
                    starts: list[float] | None = None) -> Phase:
        self.processes.check_alive()
        latencies: list[float] = []
        failures: list[str] = []

        each: list[float] = []

        async def timed(run: Callable[[], Awaitable[str | None]]) -> None:
            started, cpu = time.perf_counter(), self.processes.cpu()[role]
            try:
                failure = await run()
            except Exception as error:  # noqa: BLE001 - a benchmark reports, it doesn't stop
                failure = f"{type(error).__name__}: {error}"
            latencies.append(1000 * (time.perf_counter() - started))
            if not concurrent:
                each.append(self.processes.cpu()[role] - cpu)
            if failure:
                failures.append(failure)

        before, started = self.processes.cpu(), time.perf_counter()
        if concurrent:
            await asyncio.gather(*(timed(run) for run in runs))
        else:
            for run in runs:
                await timed(run)
        seconds = time.perf_counter() - started
        await asyncio.sleep(0.5)  # let the last heartbeats and task completions settle
        after = self.processes.cpu()
        phase = Phase(name, len(runs), seconds, latencies,
                      {role: after[role] - before[role] for role in after}, failures, each,
                      starts if starts is not None else [])
        print(f"{name}: {len(runs)} in {seconds:.1f}s, {len(failures)} failed",
              file=sys.stderr, flush=True)
        return phase

    async def run(self) -> dict[str, Any]:
        await self.connect()
        tag = datetime.now(UTC).strftime("%H%M%S")
        a = self.args
        orgs = [f"b{n:05d}" for n in range(a.changes + a.warmup)]
        warm, burst = orgs[:a.warmup], orgs[a.warmup:]
        await self.phase("warm-up", [lambda o=o: self.full_change(o) for o in warm]
                         + [lambda n=n: self.bare(f"bare-warm-{tag}-{n}") for n in range(a.warmup)],
                         concurrent=True)
        phases = {
            "bare_burst": await self.phase(
                "bare burst", [lambda n=n: self.bare(f"bare-{tag}-{n}") for n in range(a.changes)],
                concurrent=True),
            "full_burst": await self.phase(
                "full burst", [lambda o=o: self.full_change(o) for o in burst], concurrent=True),
            "bare_single": await self.phase(
                "bare singles", [lambda n=n: self.bare(f"bare-single-{tag}-{n}")
                                 for n in range(a.singles)], concurrent=False, role="bare_worker"),
            "full_single": await self.phase(
                "full singles", [lambda: self.full_change("solo")] * a.singles, concurrent=False),
            "full_single_big_org": await self.phase(
                f"full singles, {a.big_org_users} users", [lambda: self.full_change("big")]
                * a.singles, concurrent=False),
        }
        api = await self.api_phases(burst) if a.api else None
        return self.report(phases, self.starter_change_seconds(a.starter_runs), api)

    async def api_phases(self, burst: list[str]) -> dict[str, Phase]:
        """The same burst through the client and over HTTP, alternating (client, HTTP, client,
        HTTP), on the organisations of the full burst; then single starts, alternating, each
        change ended before the next starts."""
        phases: dict[str, Phase] = {}
        for round_ in range(1, self.args.api_rounds + 1):
            starts: list[float] = []
            phases[f"client_burst_{round_}"] = await self.phase(
                f"client burst {round_}", [lambda o=o, s=starts: self.full_change(o, s)
                                           for o in burst], concurrent=True, starts=starts)
            starts = []
            phases[f"api_burst_{round_}"] = await self.phase(
                f"HTTP burst {round_}", [lambda o=o, s=starts: self.full_change_over_http(o, s)
                                         for o in burst], concurrent=True, starts=starts)
        client_starts: list[float] = []
        api_starts: list[float] = []
        runs = []
        for _ in range(self.args.singles):
            runs += [lambda: self.full_change("solo", client_starts),
                     lambda: self.full_change_over_http("solo", api_starts)]
        singles = await self.phase("single starts, client and HTTP in turn", runs,
                                   concurrent=False)
        phases["client_single_starts"] = Phase("client single starts", len(client_starts),
                                               singles.seconds, [], {}, [], [], client_starts)
        phases["api_single_starts"] = Phase("HTTP single starts", len(api_starts),
                                            singles.seconds, [], singles.cpu, singles.failures,
                                            [], api_starts)
        await self.http.aclose()
        return phases

    def starter_change_seconds(self, runs: int = 5) -> float:
        """Median wall time of `starter.py change` without --wait, as a backend's script runs
        it: start the interpreter, import, connect, start the workflow, print its id."""
        times = []
        for _ in range(runs):
            self.seats["solo"] += 1
            started = time.perf_counter()
            subprocess.run([sys.executable, "starter.py", "change", "--org", "solo", "--product",
                            "one", "--by", "admin@solo.example", "--seats",
                            str(self.seats["solo"])], cwd=ROOT, check=True,
                           env={**os.environ, **self.env}, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        return round(statistics.median(times), 3)

    def api_report(self, phases: dict[str, Phase]) -> dict[str, Any]:
        """The API's cost: added latency to a start (in the bursts and alone), the HTTP
        bursts' throughput against the client bursts', the api.py process's CPU per request
        (over the HTTP bursts) and its RSS."""
        rounds = range(1, self.args.api_rounds + 1)
        client = [phases[f"client_burst_{n}"] for n in rounds]
        http = [phases[f"api_burst_{n}"] for n in rounds]

        def starts(group: list[Phase]) -> list[float]:
            return [ms for phase in group for ms in phase.starts_ms]

        def throughput(group: list[Phase]) -> float:
            return sum(p.changes for p in group) / sum(p.seconds for p in group)

        burst = {"client": quantiles(starts(client)), "api": quantiles(starts(http))}
        alone = {"client": quantiles(phases["client_single_starts"].starts_ms),
                 "api": quantiles(phases["api_single_starts"].starts_ms)}
        [api] = self.processes.roles["api"]
        return {
            "rounds": self.args.api_rounds,
            "start_latency_ms": {"burst": burst, "alone": alone},
            "added_start_latency_ms": {
                where: {q: round(figures["api"][q] - figures["client"][q], 2)
                        for q in ("p50", "p99")}
                for where, figures in (("burst", burst), ("alone", alone))},
            "throughput_per_s": {"client": round(throughput(client), 2),
                                 "api": round(throughput(http), 2)},
            "throughput_api_to_client": ratio(throughput(http), throughput(client)),
            "api_cpu_ms_per_request": round(1000 * sum(p.cpu["api"] for p in http)
                                            / sum(p.changes for p in http), 2),
            "api_rss_mb": {"peak": round(peak_rss_mb(api.pid), 1),
                           "now": round(rss_mb(api.pid), 1)},
            "phases": {name: phases[name].summary("worker")
                       for n in rounds for name in (f"client_burst_{n}", f"api_burst_{n}")},
            "failed": sum(len(phase.failures) for phase in phases.values()),
        }

    def report(self, phases: dict[str, Phase], starter_seconds: float,
               api: dict[str, Phase] | None = None) -> dict[str, Any]:
        roles = {"bare_burst": "bare_worker", "bare_single": "bare_worker"}
        summary = {name: phase.summary(roles.get(name, "worker")) for name, phase in
                   phases.items()}
        full, bare = summary["full_burst"], summary["bare_burst"]
        single, bare_single = summary["full_single"], summary["bare_single"]
        big = summary["full_single_big_org"]
        a = self.args
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "setup": {"changes": a.changes, "singles": a.singles, "workers": a.workers,
                      "database": a.database, "temporal": "in-memory" if a.in_memory else "file",
                      "big_org_users": a.big_org_users, "cpus": os.cpu_count(),
                      "sandbox_context_shortcut": a.sandbox_context_shortcut,
                      "api": a.api},
            "phases": summary,
            "ratios": {
                "throughput_full_to_bare": ratio(full["throughput_per_s"],
                                                 bare["throughput_per_s"]),
                "single_p50_full_to_bare": ratio(single["latency_ms"]["p50"],
                                                 bare_single["latency_ms"]["p50"]),
                "worker_cpu_full_to_bare": ratio(full["worker_cpu_ms_per_change"],
                                                 bare["worker_cpu_ms_per_change"]),
                "server_cpu_full_to_bare": ratio(full["server_cpu_ms_per_change"],
                                                 bare["server_cpu_ms_per_change"]),
                "big_org_to_small_org_worker_cpu": ratio(big["worker_cpu_ms_median"],
                                                         single["worker_cpu_ms_median"]),
            },
            "worker_peak_rss_mb": [round(peak_rss_mb(p.pid), 1)
                                   for p in self.processes.roles["worker"]],
            "starter_change_seconds": starter_seconds,
            **({"api": self.api_report(api)} if api is not None else {}),
        }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def table(result: dict[str, Any]) -> str:
    p = result["phases"]
    rows = [("", "full change", "bare 7-activity workflow", "ratio")]

    def row(label: str, full: float, bare: float, unit: str = "") -> None:
        rows.append((label, f"{full}{unit}", f"{bare}{unit}",
                     f"{ratio(full, bare)}" if bare else "-"))

    row("throughput (changes/s), burst", p["full_burst"]["throughput_per_s"],
        p["bare_burst"]["throughput_per_s"])
    for q in ("p50", "p95", "p99"):
        row(f"latency {q} in the burst", p["full_burst"]["latency_ms"][q],
            p["bare_burst"]["latency_ms"][q], " ms")
    for q in ("p50", "p95", "p99"):
        row(f"single-change latency {q}", p["full_single"]["latency_ms"][q],
            p["bare_single"]["latency_ms"][q], " ms")
    row("worker CPU per change", p["full_burst"]["worker_cpu_ms_per_change"],
        p["bare_burst"]["worker_cpu_ms_per_change"], " ms")
    row("Temporal server CPU per change", p["full_burst"]["server_cpu_ms_per_change"],
        p["bare_burst"]["server_cpu_ms_per_change"], " ms")
    big = p["full_single_big_org"]["worker_cpu_ms_median"]
    small = p["full_single"]["worker_cpu_ms_median"]
    rows.append((f"worker CPU, {result['setup']['big_org_users']} vs 10 users (median)",
                 f"{big} ms", f"{small} ms", f"{ratio(big, small)}"))
    rows.append(("worker peak RSS", f"{max(result['worker_peak_rss_mb'])} MB", "", ""))
    rows.append(("`starter.py change` (no --wait)", f"{result['starter_change_seconds']} s", "",
                 ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    failed = sum(phase["failed"] for phase in p.values())
    s = result["setup"]
    lines.append(f"\n{s['changes']} changes at once, {s['singles']} singles, {s['workers']} "
                 f"worker(s), {s['database']}, {s['temporal']} Temporal server, {s['cpus']} CPUs"
                 f"{'' if s['sandbox_context_shortcut'] else ', plain sandbox'}; {failed} failed")
    if "api" in result:
        lines.append("\n" + api_table(result["api"]))
    return "\n".join(lines)


def api_table(api: dict[str, Any]) -> str:
    """--api: the API against the client, in the same run."""
    rows = [("the API (--api)", "Temporal client", "HTTP (api.py)", "added / ratio")]
    for where in ("burst", "alone"):
        figures = api["start_latency_ms"][where]
        for q in ("p50", "p99"):
            added = round(figures["api"][q] - figures["client"][q], 2)
            rows.append((f"start latency {q}, {where}", f"{figures['client'][q]} ms",
                         f"{figures['api'][q]} ms", f"{added:+} ms"))
    rows.append(("throughput (changes/s), bursts", str(api["throughput_per_s"]["client"]),
                 str(api["throughput_per_s"]["api"]), str(api["throughput_api_to_client"])))
    rows.append(("api.py CPU per request", "", f"{api['api_cpu_ms_per_request']} ms", ""))
    rows.append(("api.py RSS, peak / at the end", "",
                 f"{api['api_rss_mb']['peak']} / {api['api_rss_mb']['now']} MB", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    lines.append(f"\n{api['rounds']} bursts of each kind, alternating; {api['failed']} failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=100, help="N started at once (100)")
    parser.add_argument("--singles", type=int, default=20,
                        help="changes run one after another for latency (20)")
    parser.add_argument("--warmup", type=int, default=5, help="changes of each kind first (5)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of each kind")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"),
        help="server of --database postgresql (a database is created and dropped)")
    parser.add_argument("--in-memory", action="store_true",
                        help="Temporal dev server without a database file")
    parser.add_argument("--big-org-users", type=int, default=10_000,
                        help="users of the organisation of the last phase (10000)")
    parser.add_argument("--starter-runs", type=int, default=5,
                        help="times `starter.py change` is timed, the median reported (5)")
    parser.add_argument("--no-sandbox-context-shortcut", dest="sandbox_context_shortcut",
                        action="store_false",
                        help="workers run the plain sandbox (SANDBOX_CONTEXT_SHORTCUT=false)")
    parser.add_argument("--api", action="store_true",
                        help="also start api.py and the same burst over HTTP, alternating with "
                             "the client burst; then single starts each way")
    parser.add_argument("--api-rounds", type=int, default=2,
                        help="--api: client and HTTP bursts of each kind (2)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on the way out
    var = Path(tempfile.mkdtemp(prefix="subchange-bench-"))
    bench = Bench(args, var)
    try:
        bench.start()
        result = asyncio.run(bench.run())
    finally:
        bench.stop()
        if args.keep:
            print(f"logs and databases kept in {var}", file=sys.stderr)
        else:
            shutil.rmtree(var, ignore_errors=True)
    print(table(result), file=sys.stderr)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    failed = sum(phase["failed"] for phase in result["phases"].values())
    failed += result.get("api", {}).get("failed", 0)
    return 1 if failed else 0
