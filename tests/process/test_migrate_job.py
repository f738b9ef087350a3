"""The deployment's set-up job, `python -m subchange.app.migrate` (compose's `migrate`): the
database migrated, the search attributes and the sweep's schedule registered, idempotently; a
worker that may not register search attributes (REGISTER_SEARCH_ATTRIBUTES=false) starts after
it and takes changes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from subchange.dev.devstack import ROOT
from tests.helpers.processes import READY_LINE, WorkerProcess

pytestmark = pytest.mark.integration


def migrate(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "subchange.app.migrate"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.one_pass(on="sqlite")
def test_the_migrate_job_sets_up_what_workers_only_check(process_env, tmp_path):
    env = process_env("migrate", DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")
    first = migrate(env)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("database: applied 0001"), lines
    assert lines[1].startswith("search attributes: "), lines
    assert lines[2].startswith("the reconciliation sweep's schedule: "), lines

    again = migrate(env)
    assert again.returncode == 0, again.stderr
    database, attributes, schedule = again.stdout.splitlines()
    assert database.startswith("database: the database is at") and "nothing to apply" in database
    assert attributes == "search attributes: all registered already"
    assert schedule.startswith("the reconciliation sweep's schedule: as configured already")

    worker = WorkerProcess({**env, "REGISTER_SEARCH_ATTRIBUTES": "false"}, tmp_path / "w.log")
    with worker.running():
        assert READY_LINE in worker.output()

    bad = migrate({**env, "DATABASE_URL": "mysql://nowhere/db"})
    assert bad.returncode == 2 and "DATABASE_URL" in bad.stderr, bad.stderr
