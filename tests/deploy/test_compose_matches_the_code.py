"""docker-compose.yml against the code it deploys. No Docker engine runs here, so these read the
file: a misspelt variable would be ignored in silence, a wrong port would leave the Web UI unable
to decrypt, a missing dependency would start workers on an unmigrated database."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from subchange.dev.devstack import ROOT
from subchange.settings import Settings

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = ["worker", "migrate", "codec-server", "api"]


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
    assert SERVICES["migrate"]["command"] == ["python", "-m", "subchange.store.migrate"]
    assert SERVICES["migrate"]["environment"]["DATABASE_URL"] == (
        worker["environment"]["DATABASE_URL"])
    assert worker["deploy"]["replicas"] >= 2
    assert "ports" not in worker and "container_name" not in worker  # replicas would clash


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
