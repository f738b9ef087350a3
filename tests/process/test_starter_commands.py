"""`starter.py` as people and scripts run it (SPEC section 7): a separate process configured by
the environment, against the Temporal dev server and a `worker.py` process, with the real
database, localstripe and SMTP server. Exit codes are those of subchange/app/cli/__init__.py's
docstring."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import func, select
from temporalio.service import RPCError, RPCStatusCode

from subchange.dev.devstack import ROOT
from subchange.store import staff
from subchange.store.tables import ChangeRecord, Org, OrgUser, Subscription
from tests.helpers.documents import (
    DECLINED_ON_CHARGE_CARD,
    SALES,
    STAFF_DIRECTORY,
    SUPPORT,
    org_document,
    write_fixture,
)
from tests.helpers.driver import status_of
from tests.helpers.money_oracle import with_tax
from tests.helpers.observers import (
    audit_entries,
    change_rows,
    claim_of,
    mail_text,
    subscription_row,
    succeeded_charges,
)
from tests.helpers.processes import CliResult, WorkerProcess, change_args, park_a_change, run_cli

pytestmark = pytest.mark.integration

ONLINE, REPEAT, DECLINED, OFFLINE = "cli-online", "cli-repeat", "cli-declined", "cli-offline"
PIPELINE = ["open_change", "authorize_admin", "validate_change", "quote_change", "charge",
            "apply_change", "email_invoice", "close_change"]


def fixture_document() -> dict:
    def admin(org: str, product: str, **extra) -> dict:
        return {"email": f"admin@{org}.example", "role": "admin", "primary_contact": True,
                "products": [product], **extra}

    orgs = [
        org_document(ONLINE, users=[admin(ONLINE, "one"),
                                    {"email": f"member@{ONLINE}.example", "products": ["one"]}],
                     subscriptions=[{"product": "one", "plan": "enterprise", "seats": 30,
                                     "pricing_model": "flexible_user"}]),
        org_document(REPEAT, users=[admin(REPEAT, "desk")],
                     subscriptions=[{"product": "desk", "plan": "standard", "seats": 3}]),
        org_document(DECLINED, users=[admin(DECLINED, "one")],
                     subscriptions=[{"product": "one", "plan": "enterprise", "seats": 10,
                                     "pricing_model": "flexible_user",
                                     "card": DECLINED_ON_CHARGE_CARD}]),
        org_document(OFFLINE, users=[admin(OFFLINE, "desk")],
                     subscriptions=[{"product": "desk", "plan": "professional", "seats": 5,
                                     "payment_method": "offline", "card": None}]),
    ]
    return {"orgs": [doc["orgs"][0] for doc in orgs]}


@pytest.fixture(scope="module")
def cli_env(process_env) -> dict[str, str]:
    return process_env("cli", ALLOW_RESCHEDULE="true")  # the staging command is tested here


@pytest.fixture(scope="module")
def worker(cli_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    log = tmp_path_factory.mktemp("cli-worker") / "worker.log"
    with WorkerProcess(cli_env, log).running() as process:
        yield process


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("cli-fixture") / "orgs.json", fixture_document())


@pytest.fixture(scope="module")
def loaded(cli_env, fixture_file) -> CliResult:
    result = run_cli(cli_env, "load", str(fixture_file))
    assert result.code == 0, result
    return result


def seats_of(deps, org: str, product: str) -> int:
    return subscription_row(deps, org, product).seats


# --- load ------------------------------------------------------------------------------------

def test_load_prints_a_summary_and_updates_in_place(loaded, cli_env, fixture_file, deps):
    assert loaded.json == {"loaded": str(fixture_file), "orgs": 4, "users": 5,
                           "subscriptions": 4, "staff": 0, "retried_changes": []}
    customer = subscription_row(deps, ONLINE, "one").gateway_customer_id
    again = run_cli(cli_env, "load", str(fixture_file))
    assert again.code == 0, again
    assert again.json == loaded.json
    with deps.sessions() as session:
        users = session.exec(select(func.count()).select_from(OrgUser)
                             .where(OrgUser.org_id == ONLINE)).one()
        subs = session.exec(select(Subscription).where(Subscription.org_id == ONLINE)).all()
    assert users == 2
    assert [(s.product, s.seats, s.gateway_customer_id) for s in subs] == [("one", 30, customer)]
    assert customer and customer.startswith("cus_")


def test_load_fills_the_staff_directory(cli_env, tmp_path, deps):
    member = f"ops-{uuid.uuid4().hex[:6]}@vendor.example"
    staff_file = write_fixture(tmp_path / "staff.json", {"staff": [
        {"email": member.upper(), "roles": ["support", "sales"]}]})
    loaded = run_cli(cli_env, "load", str(staff_file))
    assert loaded.code == 0, loaded
    assert loaded.json["staff"] == 1 and loaded.json["orgs"] == 0
    with deps.sessions() as session:
        assert staff.roles_of(session=session, email=member) == {"support", "sales"}

    bad = write_fixture(tmp_path / "bad.json", {"staff": [{"email": member, "roles": ["boss"]}]})
    refused = run_cli(cli_env, "load", str(bad))
    assert refused.code != 0 and "staff.0.roles.0" in refused.stderr
    with deps.sessions() as session:
        assert staff.roles_of(session=session, email=member) == {"support", "sales"}


@pytest.mark.parametrize(("break_it", "field"), [
    (lambda org: org["subscriptions"][0].update(seats="many"), "seats"),
    (lambda org: org.update(currency="XYZ"), "currency"),
    (lambda org: org.update(time_zone="Mars/Base"), "time_zone"),
    (lambda org: org["users"][0].update(email="not-an-email"), "email"),
], ids=["seats", "currency", "time_zone", "email"])
def test_load_refuses_a_bad_fixture_and_writes_nothing(cli_env, tmp_path, deps, break_it,
                                                       field):
    good = org_document("cli-never-a", users=[{"email": "a@never.example", "role": "admin"}],
                        subscriptions=[{"product": "one", "plan": "enterprise", "seats": 5}])
    bad = org_document("cli-never-b", users=[{"email": "b@never.example", "role": "admin"}],
                       subscriptions=[{"product": "one", "plan": "enterprise", "seats": 5}])
    break_it(bad["orgs"][0])
    path = write_fixture(tmp_path / "bad.json", {"orgs": good["orgs"] + bad["orgs"]})
    result = run_cli(cli_env, "load", str(path))
    assert result.code == 2, result
    assert field in result.stderr and result.stdout == ""
    with deps.sessions() as session:
        assert session.get(Org, "cli-never-a") is None
        assert session.get(Org, "cli-never-b") is None


def test_load_of_a_missing_file_is_bad_input(cli_env, tmp_path):
    result = run_cli(cli_env, "load", str(tmp_path / "nowhere.json"))
    assert result.code == 2, result
    assert "FILE" in result.stderr and "nowhere.json" in result.stderr


# --- quote -----------------------------------------------------------------------------------

def test_quote_previews_the_change_and_changes_nothing(loaded, cli_env, deps):
    before = subscription_row(deps, ONLINE, "one").model_dump()
    with deps.sessions() as session:
        changes = session.exec(select(func.count()).select_from(ChangeRecord)
                               .where(ChangeRecord.org_id == ONLINE)).one()
    result = run_cli(cli_env, "quote",
                     *change_args(ONLINE, "one", "--seats", str(before["seats"] + 5))[1:])
    assert result.code == 0, result
    quote = result.json
    assert (quote["old_seats"], quote["new_seats"]) == (before["seats"], before["seats"] + 5)
    assert quote["currency"] == "JPY" and quote["pricing_model"] == "flexible_user"
    assert float(quote["amount_due"]) > 0 and quote["amount_due"] == quote["amount"]
    # SPEC 14: a Japanese organisation's quote shows the rate, the tax and the total
    tax = quote["tax"]
    assert (Decimal(tax["rate"]), Decimal(tax["total"])) == (
        Decimal("0.10"), with_tax(Decimal(quote["amount_due"]), "JPY"))
    assert Decimal(tax["tax"]) == Decimal(tax["total"]) - Decimal(quote["amount_due"]) > 0

    no_op = run_cli(cli_env, "quote", *change_args(ONLINE, "one", "--seats",
                                                   str(before["seats"]))[1:])
    assert no_op.code == 1, no_op
    assert no_op.json["rejected"]["reason_code"] == "no_change"
    assert subscription_row(deps, ONLINE, "one").model_dump() == before
    with deps.sessions() as session:
        assert session.exec(select(func.count()).select_from(ChangeRecord)
                            .where(ChangeRecord.org_id == ONLINE)).one() == changes


# --- change ----------------------------------------------------------------------------------

def test_change_wait_shows_each_step_and_prints_the_result(worker, loaded, cli_env, deps,
                                                          mailbox, gateway):
    request_id = f"cli-wait-{uuid.uuid4().hex[:6]}"
    result = run_cli(cli_env, *change_args(ONLINE, "one", "--seats", "35", "--request-id",
                                           request_id, "--wait"))
    assert result.code == 0, result
    outcome = result.json
    assert outcome["status"] == "completed"
    assert outcome["workflow_id"] == f"change-{request_id}"
    assert outcome["subscription"]["seats"] == 35
    assert outcome["payment"]["method"] == "card" and outcome["payment"]["charge_id"]
    assert outcome["invoice"]["emailed_to"] == f"billing@{ONLINE}.example"
    positions = [result.stderr.find(f"  {step} ") for step in PIPELINE]
    assert -1 not in positions, result.stderr
    assert positions == sorted(positions), result.stderr

    assert seats_of(deps, ONLINE, "one") == 35
    charges = succeeded_charges(gateway, workflow_id=outcome["workflow_id"])
    assert [charge.payment_intent for charge in charges] == [outcome["payment"]["intent_id"]]
    invoices = mailbox.messages(to=f"billing@{ONLINE}.example")
    assert [m["Subject"].split(":")[0] for m in invoices] == [
        f"Qualified invoice {outcome['invoice']['number']}"]  # with 10% consumption tax


def test_change_wait_exits_1_when_the_change_is_rejected(worker, loaded, cli_env, deps):
    seats = seats_of(deps, ONLINE, "one")
    result = run_cli(cli_env, *change_args(ONLINE, "one", "--seats", str(seats + 1), "--wait",
                                           by=f"member@{ONLINE}.example"))
    assert result.code == 1, result
    assert result.json["status"] == "rejected"
    assert result.json["reason_code"] == "not_authorized"
    assert f"member@{ONLINE}.example" in result.json["reason"]
    assert seats_of(deps, ONLINE, "one") == seats


def test_same_request_twice_is_one_change_charged_once(worker, loaded, cli_env, deps, mailbox,
                                                       gateway):
    first = run_cli(cli_env, *change_args(REPEAT, "desk", "--seats", "5"))
    assert first.code == 0, first
    request_id = first.json["request_id"]
    workflow_id = first.json["workflow_id"]
    assert workflow_id == f"change-{request_id}"

    again = run_cli(cli_env, *change_args(REPEAT, "desk", "--seats", "5", "--request-id",
                                          request_id))
    assert again.code == 0, again
    assert (again.json["workflow_id"], again.json["request_id"]) == (workflow_id, request_id)

    other = run_cli(cli_env, *change_args(REPEAT, "desk", "--seats", "4", "--request-id",
                                          request_id))
    assert other.code == 2 and other.stdout == "", other  # another request under its id
    assert "--request-id" in other.stderr and "another change" in other.stderr

    followed = run_cli(cli_env, *change_args(REPEAT, "desk", "--seats", "5", "--request-id",
                                             request_id, "--wait"))
    assert followed.code == 0, followed
    assert followed.json["status"] == "completed"
    subscription_after = followed.json["subscription"]
    assert (subscription_after["plan"], subscription_after["seats"]) == ("standard", 5)

    status = run_cli(cli_env, "status", workflow_id)
    assert status.code == 0, status
    assert status.json["state"] == "completed" and status.json["waiting_for"] is None
    assert [r["step"] for r in status.json["history"]] == PIPELINE

    assert len(succeeded_charges(gateway, workflow_id=workflow_id)) == 1
    assert change_rows(deps, workflow_id) == {"change_record": 1, "applied_change": 1, "invoice": 1,
                                         "refund_ticket": 0}
    assert len(mailbox.messages(to=f"billing@{REPEAT}.example")) == 1
    assert seats_of(deps, REPEAT, "desk") == 5

    # Support actions on a change that has ended are refused, and change nothing.
    for command in ("retry", "cancel"):
        refused = run_cli(cli_env, command, workflow_id, "--by", SUPPORT)
        assert refused.code == 1, refused
        assert f"{command} refused" in refused.stderr and "ended" in refused.stderr
    assert seats_of(deps, REPEAT, "desk") == 5


def test_declined_card_waits_for_payment_until_cancelled(worker, loaded, cli_env, deps,
                                                         mailbox, gateway):
    request_id = f"cli-declined-{uuid.uuid4().hex[:6]}"
    workflow_id = f"change-{request_id}"
    args = change_args(DECLINED, "one", "--seats", "12", "--request-id", request_id, "--wait")
    parked = run_cli(cli_env, *args)
    assert parked.code == 3, parked
    assert parked.json["state"] == "awaiting_payment" and parked.json["next_attempt_at"]
    assert "support may retry or cancel" in parked.json["waiting_for"]
    assert "declined" in parked.json["last_error"]

    status = run_cli(cli_env, "status", workflow_id)
    assert status.code == 0, status
    assert (status.json["state"], status.json["step"]) == ("awaiting_payment", "charge")

    wrong = run_cli(cli_env, "retry", workflow_id, "--by", SALES)
    assert wrong.code == 1, wrong
    assert f"{SALES} lacks role support" in wrong.stderr
    nobody = run_cli(cli_env, "retry", workflow_id)
    assert nobody.code == 2 and "--by" in nobody.stderr, nobody
    retried = run_cli(cli_env, "retry", workflow_id, "--by", SUPPORT)
    assert retried.code == 0, retried
    assert "charge" in retried.json["message"]
    parked_again = run_cli(cli_env, *args)  # the card is declined again
    assert parked_again.code == 3, parked_again
    attempts = [r for r in parked_again.json["history"] if r["step"] == "charge"]
    assert [r["outcome"] for r in attempts] == ["failed", "failed"]

    cancelled = run_cli(cli_env, "cancel", workflow_id, "--by", SUPPORT, "--reason",
                        "card expired")
    assert cancelled.code == 0, cancelled
    assert "nothing was charged" in cancelled.json["message"]
    ended = run_cli(cli_env, *args)
    assert ended.code == 1, ended
    assert (ended.json["status"], ended.json["reason_code"]) == ("cancelled", "cancelled")

    assert seats_of(deps, DECLINED, "one") == 10
    assert succeeded_charges(gateway, workflow_id=workflow_id) == []
    assert change_rows(deps, workflow_id) == {"change_record": 1, "applied_change": 0, "invoice": 0,
                                         "refund_ticket": 0}
    [notice] = mailbox.messages(to=f"billing@{DECLINED}.example")  # one, for two declines
    assert notice["Message-ID"] == f"<payment-failed.{workflow_id}@subchange>"


def test_offline_payer_change_waits_for_the_sales_decision(worker, loaded, cli_env, deps,
                                                           mailbox, gateway):
    approved_id = f"cli-sales-ok-{uuid.uuid4().hex[:6]}"
    args = change_args(OFFLINE, "desk", "--seats", "8", "--request-id", approved_id, "--wait")
    waiting = run_cli(cli_env, *args)
    assert waiting.code == 3, waiting
    assert waiting.json["state"] == "awaiting_sales"
    assert "sales decision" in waiting.json["waiting_for"]

    refused = run_cli(cli_env, "retry", f"change-{approved_id}", "--by", SUPPORT)
    assert refused.code == 1, refused
    assert "retry refused" in refused.stderr and "nothing to retry" in refused.stderr

    decided = run_cli(cli_env, "sales-decision", f"change-{approved_id}", "--approve", "--by",
                      SALES, "--note", "contract signed")
    assert decided.code == 0, decided
    assert "approved" in decided.json["message"]
    completed = run_cli(cli_env, *args)
    assert completed.code == 0, completed
    assert completed.json["status"] == "completed"
    assert completed.json["payment"]["method"] == "offline"
    assert completed.json["payment"]["approved_by"] == SALES
    assert seats_of(deps, OFFLINE, "desk") == 8
    assert succeeded_charges(gateway, workflow_id=f"change-{approved_id}") == []
    assert len(mailbox.messages(to=f"billing@{OFFLINE}.example")) == 1

    rejected_id = f"cli-sales-no-{uuid.uuid4().hex[:6]}"
    args = change_args(OFFLINE, "desk", "--seats", "10", "--request-id", rejected_id, "--wait")
    assert run_cli(cli_env, *args).code == 3
    bad = run_cli(cli_env, "sales-decision", f"change-{rejected_id}", "--approve", "--by",
                  "someone")
    assert bad.code == 2, bad
    assert "--by" in bad.stderr
    decided = run_cli(cli_env, "sales-decision", f"change-{rejected_id}", "--reject", "--by",
                      SALES, "--note", "no budget")
    assert decided.code == 0, decided
    ended = run_cli(cli_env, *args)
    assert ended.code == 1, ended
    assert (ended.json["status"], ended.json["reason_code"]) == ("rejected", "sales_rejected")
    assert "no budget" in ended.json["reason"]
    assert seats_of(deps, OFFLINE, "desk") == 8
    assert change_rows(deps, f"change-{rejected_id}")["applied_change"] == 0
    assert len(mailbox.messages(to=f"billing@{OFFLINE}.example")) == 1


async def test_a_terminated_change_is_reported_terminated(worker, dev_env, cli_env, tmp_path):
    """A change waiting for support, then terminated with the Temporal client: following it
    again, or asking its status, says it was terminated and what it was doing then; nobody
    waits any more (not exit 3), and no WorkflowFailureError traceback."""
    org, workflow_id = park_a_change(cli_env, tmp_path, prefix="cli-ended")
    await dev_env.client.get_workflow_handle(workflow_id).terminate(reason="stuck")

    followed = run_cli(cli_env, *change_args(org, "one", "--seats", "12", "--request-id",
                                             workflow_id.removeprefix("change-"), "--wait"))
    assert followed.code == 1, followed
    assert "Traceback" not in followed.stderr and f"{workflow_id} terminated" in followed.stderr
    report = followed.json
    assert (report["workflow_id"], report["status"], report["state"]) == (
        workflow_id, "terminated", "terminated")
    assert (report["last_state"], report["step"], report["waiting_for"]) == (
        "awaiting_payment", "charge", None)
    assert "declined" in report["last_error"] and report["result"] is None

    status = run_cli(cli_env, "status", workflow_id)
    assert status.code == 0, status
    assert status.json == report

    retried = run_cli(cli_env, "retry", workflow_id, "--by", SUPPORT)
    assert retried.code == 1 and "already ended" in retried.stderr, retried


# --- a change at the period end (SPEC section 10) ------------------------------------------

def test_period_end_change_waits_scheduled_is_replaced_and_fired_early(worker, cli_env, deps,
                                                                     mailbox, tmp_path):
    org = f"cli-pend-{uuid.uuid4().hex[:6]}"
    document = org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                         "primary_contact": True, "products": ["desk"]}],
                            subscriptions=[{"product": "desk", "plan": "professional",
                                            "seats": 3}])
    for loaded_file in (write_fixture(tmp_path / "org.json", document),
                        write_fixture(tmp_path / "staff.json", STAFF_DIRECTORY)):
        assert run_cli(cli_env, "load", str(loaded_file)).code == 0
    scheduled = ["--at", "period-end", "--wait"]
    first = run_cli(cli_env, *change_args(org, "desk", "--plan", "standard", *scheduled))
    assert first.code == 4 and first.json["state"] == "scheduled", first
    refused = run_cli(cli_env, *change_args(org, "desk", "--plan", "free", *scheduled))
    assert refused.code == 1 and refused.json["reason_code"] == "change_scheduled", refused
    assert first.json["workflow_id"] in refused.json["reason"]

    second = run_cli(cli_env, *change_args(org, "desk", "--plan", "free",
                                           "--replace-scheduled", *scheduled))
    assert second.code == 4, second
    replaced = run_cli(cli_env, "status", first.json["workflow_id"]).json["result"]
    assert replaced["status"] == "cancelled"
    assert second.json["workflow_id"] in replaced["reason"]

    fired = run_cli(cli_env, "reschedule", second.json["workflow_id"], "--at", "now",
                    "--by", SUPPORT)
    assert fired.code == 0 and "fires at" in fired.json["message"], fired
    for _ in range(100):
        view = run_cli(cli_env, "status", second.json["workflow_id"]).json
        if view["result"]:
            break
    assert view["result"]["status"] == "completed", view
    assert subscription_row(deps, org, "desk").plan == "free"
    [confirmation] = mailbox.messages(to=f"billing@{org}.example")
    assert "Takes effect" in mail_text(confirmation)


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize(("what", "field"), [
    (["--seats", "abc"], "--seats"),
    (["--seats", "-1"], "--seats"),
    (["--seats", "3", "--plan", "standard"], "--plan"),
    (["--product", "nope", "--seats", "3"], "--product"),
    (["--by", "not-an-email", "--seats", "3"], "--by"),
    (["--request-id", "has spaces", "--seats", "3"], "--request-id"),
    (["--at", "later", "--seats", "3"], "--at"),
], ids=["seats-abc", "seats-negative", "seats-and-plan", "product", "by", "request-id", "at"])
async def test_bad_change_input_exits_2_and_starts_nothing(dev_env, cli_env, deps, what, field):
    request_id = f"cli-bad-{uuid.uuid4().hex[:6]}"
    args = change_args(REPEAT, "desk", "--request-id", request_id)
    for flag, value in zip(what[::2], what[1::2], strict=True):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    result = run_cli(cli_env, *args)
    assert result.code == 2, result
    assert field in result.stderr and result.stdout == ""
    for workflow_id in (f"change-{request_id}", "change-has spaces"):
        with pytest.raises(RPCError) as missing:
            await dev_env.client.get_workflow_handle(workflow_id).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND
    with deps.sessions() as session:
        assert session.get(ChangeRecord, f"change-{request_id}") is None


# Every command's options are checked before anything is sent or opened: a bad one is named
# with its problem (exit 2), never a traceback. WORKFLOW stands for a change waiting for support.
LONG_ADDRESS = "s" * 190 + "@vendor.example"  # an address, but 205 characters: over 200
BAD_OPTIONS = [
    (["retry", "WORKFLOW", "--by", LONG_ADDRESS], "--by", "at most 200 characters"),
    (["retry", "WORKFLOW", "--by", "support"], "--by", "not a valid email address"),
    (["cancel", "WORKFLOW", "--by", LONG_ADDRESS], "--by", "at most 200 characters"),
    (["cancel", "WORKFLOW", "--by", SUPPORT, "--reason", "r" * 1001], "--reason",
     "at most 1000 characters"),
    (["sales-decision", "WORKFLOW", "--approve", "--by", LONG_ADDRESS], "--by",
     "at most 200 characters"),
    (["sales-decision", "WORKFLOW", "--reject", "--by", SALES, "--note", "n" * 2001], "--note",
     "at most 2000 characters"),
    (["retry", "WORKFLOW; drop", "--by", SUPPORT], "WORKFLOW_ID", "change-<request id>"),
    (["status", "change-" + "x" * 1100], "WORKFLOW_ID", "change-<request id>"),
    (["reschedule", "WORKFLOW", "--at", "2026-12-01T00:00", "--by", SUPPORT], "--at",
     "needs a time zone"),
    (["release-claim", "--org", "has spaces", "--product", "one", "--by", SUPPORT], "--org",
     "pattern"),
    (["release-claim", "--org", "ORG", "--product", "one", "--by", LONG_ADDRESS], "--by",
     "at most 200 characters"),
    (["release-claim", "--org", "ORG", "--product", "one", "--by", "support"], "--by",
     "not a valid email address"),
    (["sweep", "--page-size", "501"], "--page-size", "less than or equal to 500"),
]


@pytest.fixture(scope="module")
def parked(worker, cli_env, tmp_path_factory) -> tuple[str, str]:
    """(org, workflow id) of a change waiting for support, holding its subscription."""
    return park_a_change(cli_env, tmp_path_factory.mktemp("cli-parked"), prefix="cli-parked")


@pytest.mark.parametrize(("command", "option", "problem"), BAD_OPTIONS,
                         ids=[f"{c[0]}-{o}-{p.split()[-1]}" for c, o, p in BAD_OPTIONS])
async def test_a_bad_option_of_any_command_exits_2_naming_it_and_sends_nothing(
        parked, dev_env, cli_env, deps, command, option, problem):
    org, workflow_id = parked
    handle = dev_env.client.get_workflow_handle(workflow_id)
    events_before = len((await handle.fetch_history()).events)
    audit_before = audit_entries(deps, org=org)

    args = [{"WORKFLOW": workflow_id, "ORG": org}.get(arg, arg.replace("WORKFLOW", workflow_id))
            for arg in command]
    result = run_cli(cli_env, *args)

    assert result.code == 2, result
    assert f"{option}: " in result.stderr and problem in result.stderr, result
    assert "Traceback" not in result.stderr and result.stdout == "", result
    # nothing sent or written: the change still waits, no update in its history, no verdict
    # audited, the subscription still held by it, nothing refunded
    assert len((await handle.fetch_history()).events) == events_before
    assert (await status_of(handle)).state == "awaiting_payment"
    assert audit_entries(deps, org=org) == audit_before
    assert claim_of(deps, org, "one") == workflow_id


def test_load_of_a_file_that_is_not_utf8_is_bad_input(cli_env, tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"orgs": [{"id": "café"}]}'.encode("latin-1"))
    result = run_cli(cli_env, "load", str(path))
    assert result.code == 2, result
    assert "FILE: " in result.stderr and "UTF-8" in result.stderr, result
    assert "Traceback" not in result.stderr and result.stdout == "", result


def test_status_of_an_unknown_change_is_bad_input(cli_env):
    result = run_cli(cli_env, "status", "change-never-started")
    assert result.code == 2, result
    assert "WORKFLOW_ID" in result.stderr and "change-never-started" in result.stderr
    assert result.stdout == ""


# --- the invoices' issuer (SPEC section 14) ----------------------------------------------------

@pytest.mark.parametrize("command", [["worker.py"], ["starter.py", "status", "change-x"]],
                         ids=["worker", "starter"])
def test_a_mistyped_registration_number_stops_worker_and_starter(cli_env, command):
    env = {**cli_env, "SELLER_REGISTRATION_NUMBER": "T7000012050003"}
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "SELLER_REGISTRATION_NUMBER: " in done.stderr and "check digit" in done.stderr


def test_a_worker_without_an_issuer_refuses_to_start(cli_env):
    env = {**cli_env, "SELLER_NAME": "", "SELLER_ADDRESS": ""}
    done = subprocess.run([sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "SELLER_NAME, SELLER_ADDRESS: not set" in done.stderr
