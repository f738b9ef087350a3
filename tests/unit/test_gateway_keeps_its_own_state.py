"""The embedded stack's localstripe keeps its state in a file of the stack's own
(subchange/dev/gateway_server.py): a restart finds the customers it had, a truncated file (a
gateway stopped mid-write) starts an empty gateway instead of failing `make demo`, and the
suite's and the benchmark's gateways, which keep nothing, can't overwrite it."""

from __future__ import annotations

from pathlib import Path

from subchange.dev.devstack import start_localstripe, stop_process
from tests.helpers.observers import stripe_client


def customer_ids(url: str) -> set[str]:
    return {customer.id for customer in stripe_client(url, "sk_test_x").v1.customers.list()}


def test_a_restart_finds_the_customers_it_had(tmp_path: Path):
    state = tmp_path / "localstripe.pickle"
    process, url = start_localstripe(state=state)
    try:
        created = stripe_client(url, "sk_test_x").v1.customers.create({"email": "a@b.example"})
    finally:
        stop_process(process)
    process, url = start_localstripe(state=state)
    try:
        assert created.id in customer_ids(url)
    finally:
        stop_process(process)


def test_a_truncated_state_file_starts_an_empty_gateway(tmp_path: Path):
    state = tmp_path / "localstripe.pickle"
    state.write_bytes(b"\x80\x05\x95 truncated")
    log = tmp_path / "localstripe.log"
    process, url = start_localstripe(log=log, state=state)
    try:
        assert customer_ids(url) == set()
        stripe_client(url, "sk_test_x").v1.customers.create({"email": "a@b.example"})
    finally:
        stop_process(process)
    assert "unreadable" in log.read_text()
    assert state.stat().st_size > 100  # written whole again


def test_a_gateway_without_a_state_file_shares_nothing(tmp_path: Path):
    state = tmp_path / "localstripe.pickle"
    kept, kept_url = start_localstripe(state=state)
    scratch, scratch_url = start_localstripe()
    try:
        stripe_client(scratch_url, "sk_test_x").v1.customers.create({"email": "x@y.example"})
        assert customer_ids(kept_url) == set()
    finally:
        stop_process(scratch)
        stop_process(kept)
    assert not state.exists() or customer_ids_after_restart(state) == set()


def customer_ids_after_restart(state: Path) -> set[str]:
    process, url = start_localstripe(state=state)
    try:
        return customer_ids(url)
    finally:
        stop_process(process)
