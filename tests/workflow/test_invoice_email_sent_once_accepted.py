"""Once the mail server accepted the invoice email (its 250 to the end of DATA), it is sent: one
copy reaches the billing address, the invoice is marked sent, whatever happens after. A server
that answers QUIT with an error (smtplib's own exit raised on anything but 221, and the step took
that for "nothing went out" and sent again) does not make the step fail; a database that can't
take `sent` for a while (its write lock held) fails the attempt, and the next one writes `sent`
instead of sending again, since the attempt told Temporal the message was accepted (a heartbeat
detail, handed to the next attempt). Real workflow, activities, database, and an aiosmtpd server
in this process (the sink's Maildir handler) that answers its own way."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowHandle

from subchange.app.wiring import build_worker
from subchange.domain.contracts import ChangeStatus
from subchange.store import invoices
from tests.helpers.documents import admin, org_document, unique_org
from tests.helpers.driver import ChangeDriver, wait_for
from tests.helpers.services import MaildirServer, WriteLock


class QuitRefusingServer(MaildirServer):
    """Takes every message, then answers QUIT with `code` instead of 221."""

    def __init__(self, root, code: int) -> None:
        super().__init__(root)
        self.code = code

    async def handle_QUIT(self, server, session, envelope):
        return f"{self.code} 4.3.2 closing: the system is shutting down"


class LockingServer(MaildirServer):
    """Takes the first message, and before it answers 250 another client takes the database's
    write lock (the invoice table's on PostgreSQL) for `seconds`: more than a transaction waits
    for it (10 s), so the attempt that sent can't write `sent` and fails."""

    def __init__(self, root, database_url: str, seconds: float) -> None:
        super().__init__(root)
        self.lock, self.seconds = WriteLock(database_url, "invoice"), seconds
        self.locked = False

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if not self.locked:
            self.locked = True
            self.lock.take()
            self.lock.release_after(self.seconds)
        return answer


@dataclasses.dataclass
class Mailing:
    driver: ChangeDriver
    server: MaildirServer


@pytest.fixture
async def mailing_with(ts_client, time_skipping_env, deps, settings, load, task_queue, tmp_path):
    """A worker whose mail server is `server` (a MaildirServer, started here)."""

    async def start(server: MaildirServer) -> AsyncIterator[Mailing]:
        with server.running():
            mailing = dataclasses.replace(deps, settings=settings.model_copy(
                update={"smtp_port": server.port}))
            async with build_worker(ts_client, mailing, task_queue=task_queue,
                                    fail_workflows_on_bugs=True):
                yield Mailing(ChangeDriver(ts_client, task_queue, time_skipping_env, load),
                              server)

    return start


async def email_attempts(handle: WorkflowHandle) -> int:
    """How many attempts the email step took (the server records it on the started event)."""
    history = await handle.fetch_history()
    scheduled = {e.event_id for e in history.events
                 if e.activity_task_scheduled_event_attributes.activity_type.name
                 == "email_invoice"}
    [started] = [e.activity_task_started_event_attributes for e in history.events
                 if e.activity_task_started_event_attributes.scheduled_event_id in scheduled]
    return started.attempt


async def settled_or_sent_twice(mailing: Mailing, handle: WorkflowHandle, to: str) -> list:
    """The messages `to` once the change ended, or as soon as a second copy arrived."""
    await wait_for(handle, lambda view: view.result is not None
                   or len(mailing.server.inbox.messages(to=to)) > 1, "an end or a second copy")
    return mailing.server.inbox.messages(to=to)


def email_status(deps, workflow_id: str) -> str:
    with deps.sessions() as session:
        return invoices.change_invoice(session=session, workflow_id=workflow_id).email_status


async def start_an_increase(driver: ChangeDriver, org: str):
    """A card payer's 30 → 35 seats: charged, applied, and its invoice emailed."""
    driver.reload(org_document(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user"}]))
    return await driver.start(org, seats=35)


@pytest.mark.parametrize("code", [421, 500])
async def test_an_error_answer_to_quit_after_the_message_was_accepted_sends_once(
        mailing_with, deps, tmp_path, code):
    async for mailing in mailing_with(QuitRefusingServer(tmp_path, code)):
        org = unique_org("quit")
        handle = await start_an_increase(mailing.driver, org)
        messages = await settled_or_sent_twice(mailing, handle, f"billing@{org}.example")

        assert len(messages) == 1
        result = await mailing.driver.settle(handle)
        assert result.status is ChangeStatus.COMPLETED
        assert result.invoice.number in messages[0]["Subject"]
        assert email_status(deps, handle.id) == "sent"
        assert await email_attempts(handle) == 1  # not retried: it went out the first time


async def test_sent_that_cannot_be_written_at_first_is_written_by_the_next_attempt(
        mailing_with, deps, database_url, tmp_path):
    # The first attempt fails 10-20 s after the message was accepted (a lease renewal may be
    # waiting for the lock too); the lease it held runs out 15 s after its last renewal, which
    # is before the lock is released, so an attempt that did not know would send again.
    server = LockingServer(tmp_path, database_url, seconds=25)
    async for mailing in mailing_with(server):
        org = unique_org("unwritten")
        handle = await start_an_increase(mailing.driver, org)
        messages = await settled_or_sent_twice(mailing, handle, f"billing@{org}.example")
        server.lock.release()

        assert len(messages) == 1
        result = await mailing.driver.settle(handle)
        assert result.status is ChangeStatus.COMPLETED
        assert result.invoice.number in messages[0]["Subject"]
        assert email_status(deps, handle.id) == "sent"
        assert await email_attempts(handle) > 1  # the first attempt did fail
