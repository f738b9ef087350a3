"""No log record of a worker holds an email address, on the paths where one used to slip in: a
database error (a locked database, as a long `starter.py load` makes it), whose SQL text carried
the bound parameters (requested_by, emailed_to, actor) into the SDK's "Completing activity as
failed" line; and a mail server's refusals, whose exceptions and replies named the recipient.
Every record of every logger is captured at DEBUG with payloads sealed (PAYLOAD_KEYS, as
deployed), and at INFO, the worker's level, without. The failures are still logged, and the
change still ends as it should: only the address is left out. Real workflow, activities,
database, SMTP server (aiosmtpd, in this process) and the SDK's own worker."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from activities.registry import all_activities
from subchange.adapters.codec import data_converter
from subchange.app.wiring import build_worker
from subchange.domain.contracts import ChangeStatus
from subchange.payload_keys import new_key_setting
from tests.helpers.documents import admin, org_document, unique_org
from tests.helpers.driver import ChangeDriver, wait_parked
from tests.helpers.services import MaildirServer, WriteLock
from tests.workflow.step_caller_workflow import CallsAStep

KEYS = new_key_setting("k1")
SDK_FAILURE_LINE = "Completing activity as failed"
MAIL_SERVER_LOGGER = "mail.log"  # aiosmtpd's, running in this process: the server's, not ours


def rendered(record: logging.LogRecord) -> str:
    """All a handler could write of the record: its message, traceback, stack and extra fields."""
    text = logging.Formatter("%(levelname)s %(name)s %(message)s").format(record)
    return f"{text}\n{vars(record)!r}"


def records_naming(caplog, level: int, *addresses: str) -> list[str]:
    """The records from `level` up, the mail server's own left out, that name an address."""
    return [rendered(r) for r in caplog.records
            if r.levelno >= level and not r.name.startswith(MAIL_SERVER_LOGGER)
            and any(a.lower() in rendered(r).lower() for a in addresses)]


@pytest.fixture(params=["sealed-debug", "plain-info"])
def sealing(request) -> tuple[bool, int]:
    """Payloads sealed with every record from DEBUG up, or plain JSON from the worker's INFO."""
    return {"sealed-debug": (True, logging.DEBUG),
            "plain-info": (False, logging.INFO)}[request.param]


@pytest.fixture
async def client(time_skipping_env, sealing) -> Client:
    sealed, _ = sealing
    if not sealed:
        return time_skipping_env.client
    target = time_skipping_env.client.service_client.config.target_host
    return await Client.connect(target, data_converter=data_converter(KEYS))


def capture_every_record(caplog) -> None:
    """From here on, every record of every logger (the SDK's too), DEBUG up. Called once the
    organisations are loaded: loading them is `starter.py load`'s work, not the worker's."""
    caplog.clear()
    caplog.set_level(logging.DEBUG)


@pytest.fixture
async def driver(client, deps, task_queue, time_skipping_env, load
                  ) -> AsyncIterator[ChangeDriver]:
    async with build_worker(client, deps, task_queue=task_queue, fail_workflows_on_bugs=True):
        yield ChangeDriver(client, task_queue, time_skipping_env, load)


async def until_logged(caplog, text: str, seconds: float = 30) -> logging.LogRecord:
    for _ in range(int(seconds / 0.1)):
        found = [r for r in caplog.records if text in r.getMessage()]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"nothing logged {text!r} within {seconds} s")


async def test_a_database_error_is_logged_without_the_addresses_in_its_statement(
        driver, database_url, caplog, sealing):
    _, level = sealing
    org = unique_org("locked")
    requester, billing = f"admin@{org}.example", f"billing@{org}.example"
    driver.reload(org_document(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user"}]))
    capture_every_record(caplog)

    with WriteLock(database_url, "change_record") as lock:
        handle = await driver.start(org, seats=35, by=requester)
        failed = await until_logged(caplog, SDK_FAILURE_LINE)  # open_change met the lock
        lock.release()
    result = await driver.settle(handle)

    assert result.status is ChangeStatus.COMPLETED  # the retry after the lock went through
    assert failed.levelno == logging.WARNING and failed.exc_info is not None
    assert type(failed.exc_info[1]).__name__ == "OperationalError"  # still said, and why
    assert "lock" in rendered(failed).lower()
    assert records_naming(caplog, level, requester, billing) == []


class RefusingServer(MaildirServer):
    """Answers RCPT as Postfix does, naming the address in the reply: `greylisted@` is refused
    for now (450) the first time, `unknown@` for good (550). No SMTPUTF8."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.greylisted: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("unknown@"):
            return (f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in "
                    "local recipient table")
        if address.startswith("greylisted@") and address not in self.greylisted:
            self.greylisted.add(address)
            return f"450 4.2.0 <{address}>: Recipient address rejected: Greylisted"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
async def refusing_driver(client, deps, settings, task_queue, time_skipping_env, load,
                           tmp_path) -> AsyncIterator[tuple[ChangeDriver, RefusingServer]]:
    with RefusingServer(tmp_path).running() as server:
        mailing = dataclasses.replace(deps, settings=settings.model_copy(
            update={"smtp_port": server.port}))
        async with build_worker(client, mailing, task_queue=task_queue,
                                fail_workflows_on_bugs=True):
            yield ChangeDriver(client, task_queue, time_skipping_env, load), server


async def test_mail_server_refusals_are_logged_without_the_address(refusing_driver, caplog,
                                                                   sealing):
    _, level = sealing
    driver, server = refusing_driver
    orgs = {kind: unique_org(kind) for kind in ("greylisted", "unknown", "utf8")}
    billing = {"greylisted": f"greylisted@{orgs['greylisted']}.example",
               "unknown": f"unknown@{orgs['unknown']}.example",
               "utf8": f"請求@{orgs['utf8']}.example"}
    for kind, org in orgs.items():
        driver.reload(org_document(org, users=[admin(org)], billing_email=billing[kind],
                                    subscriptions=[{"product": "one", "plan": "enterprise",
                                                    "seats": 30,
                                                    "pricing_model": "flexible_user"}]))
    capture_every_record(caplog)

    handles = {kind: await driver.start(org, seats=35) for kind, org in orgs.items()}

    greylisted = await driver.settle(handles["greylisted"])  # refused once, then sent
    assert greylisted.status is ChangeStatus.COMPLETED
    assert len(server.inbox.messages(to=billing["greylisted"])) == 1
    for kind, says in (("unknown", "User unknown"), ("utf8", "SMTPUTF8")):
        view = await wait_parked(handles[kind])  # support is told what is wrong and what to do
        assert view.step == "email_invoice"
        assert says in view.last_error and "billing_email" in view.last_error
    failures = [rendered(r) for r in caplog.records if SDK_FAILURE_LINE in r.getMessage()]
    assert any("Greylisted" in f for f in failures) and any("User unknown" in f for f in failures)
    assert records_naming(caplog, level, *billing.values()) == []
    # Which address it was is the failure's detail, sealed in the history (the Web UI shows it
    # through the codec server).
    history = await handles["unknown"].fetch_history()
    [failure] = [e.activity_task_failed_event_attributes.failure for e in history.events
                 if e.HasField("activity_task_failed_event_attributes")]
    error = await driver.client.data_converter.decode_failure(failure)
    assert error.details == ({"billing_email": billing["unknown"]},)
    for handle in (handles["unknown"], handles["utf8"]):
        await handle.terminate()


async def test_a_step_input_it_cannot_read_is_logged_without_its_addresses(client, deps,
                                                                           caplog, sealing):
    """A workflow of another release asks a step with an input it can't read (here the check of
    who sends an update, without the fields a newer release added): the SDK logs the pydantic
    error the step failed with, which quoted the input, the staff member's address included."""
    _, level = sealing
    staff = f"ops@{uuid.uuid4().hex[:6]}.example"
    task_queue = f"tq-{uuid.uuid4().hex[:10]}"
    capture_every_record(caplog)
    async with Worker(client, task_queue=task_queue, workflows=[CallsAStep],
                      activities=all_activities(deps), activity_executor=ThreadPoolExecutor(2)):
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(
                CallsAStep.run, args=["authorize_principal", {"action": "retry", "by": staff}],
                id=f"skew-{uuid.uuid4().hex[:10]}", task_queue=task_queue)

    failed = await until_logged(caplog, SDK_FAILURE_LINE)  # it still says what was wrong
    assert "requester" in rendered(failed) and "Field required" in rendered(failed)
    assert records_naming(caplog, level, staff) == []
