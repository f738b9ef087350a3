"""The Dockerfile, read (no Docker engine here): the image installs the hash-checked production
lock in a layer that a change to the sources leaves cached, brings in nothing outside it, runs
as a user without root, and has the Japanese font that production leaves matplotlib-fontja out
for."""

from __future__ import annotations

from subchange.dev.devstack import ROOT

LINES = [line.strip() for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
         if line.strip() and not line.lstrip().startswith("#")]


def index(fragment: str) -> int:
    return next(i for i, line in enumerate(LINES) if fragment in line)


def test_the_locked_dependencies_are_installed_before_the_sources_are_copied():
    lock = index("-r requirements/production.txt")
    assert "--require-hashes" in LINES[lock]
    assert "-r requirements/build.txt" in LINES[lock + 1]  # the build backend, locked too
    copied = index("COPY requirements/production.txt")
    assert "requirements/build.txt" in LINES[copied]
    assert copied < lock < index("COPY subchange")
    project = index("pip install --no-cache-dir --no-deps --no-build-isolation .")
    assert project > index("COPY subchange")
    # The locks, then the project without its dependencies, built with the locked setuptools:
    # no other install, nothing unlocked, not even for the build.
    assert [i for i, line in enumerate(LINES) if "pip install" in line] == [lock, project]


def test_it_runs_as_a_user_without_root_and_draws_japanese():
    assert LINES[index("USER ")] == "USER subchange"
    assert index("USER ") > index("pip install --no-cache-dir --no-deps")
    assert "fonts-ipaexfont-gothic" in " ".join(LINES)


def test_the_build_context_leaves_out_the_venv_state_and_secrets():
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", "var", ".env", ".git", "tests"} <= ignored
    assert "requirements" not in ignored and "README.md" not in ignored  # the build reads both
