"""What the worker's log handler writes (subchange.app.logs, text or JSON lines): whatever names an
email address, a library's message, an exception's text, a database server's DETAIL line, a
warning, comes out with `[address]` in its place, and the lines stay whole (JSON that parses).
The second line behind keeping addresses out at the source (tests/workflow/
test_logs_hold_no_addresses.py)."""

from __future__ import annotations

import json
import logging
import warnings

import pytest

from subchange.app.logs import configure_logging

ADDRESSES = ("billing@acme.example", "請求@例え.jp", "first.last+tag@mail.acme.co.jp")


@pytest.fixture
def worker_log(capsys):
    """configure_logging as worker.py calls it, writing to the captured stderr; the logging set-up
    of the test run is put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure(log_format: str) -> None:
        configure_logging(log_format)

    yield configure
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)


def log_everything() -> None:
    logging.getLogger("stripe").warning("customer cus_1 (%s) could not be updated", ADDRESSES[0])
    try:
        raise RuntimeError('duplicate key value violates unique constraint "org_user_org_id_email"'
                           f"\nDETAIL:  Key (org_id, email)=(acme, {ADDRESSES[1]}) exists.")
    except RuntimeError:
        logging.getLogger("temporalio.activity").warning("Completing activity as failed",
                                                         exc_info=True)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"serializing {ADDRESSES[2]} as a string", UserWarning, stacklevel=1)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_line_holds_an_address(worker_log, capsys, log_format):
    worker_log(log_format)
    log_everything()
    written = capsys.readouterr().err

    assert not [a for a in ADDRESSES if a in written], written
    assert written.count("[address]") == 3
    # The rest of each line is kept: what failed, and why.
    assert "could not be updated" in written and "unique constraint" in written
    assert "Completing activity as failed" in written and "serializing" in written
    if log_format == "json":
        lines = [json.loads(line) for line in written.splitlines()]
        assert [line["logger"] for line in lines] == ["stripe", "temporalio.activity",
                                                      "py.warnings"]
        assert "Key (org_id, email)=(acme, [address])" in lines[1]["exc_info"]
