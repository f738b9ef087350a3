"""The unit room: pure functions, state machines, renderers and single activities, with no
Temporal server; at most the database, localstripe and the loader of tests/conftest.py."""

from __future__ import annotations

import pytest

from subchange.settings import get_settings


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """A clean environment without a .env file; get_settings is cached, so clear it around."""
    monkeypatch.chdir(tmp_path)
    for name in ("SMTP_PORT", "SALES_DECISION_TIMEOUT", "STRIPE_API_KEY", "TASK_QUEUE",
                 "DATABASE_URL", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
