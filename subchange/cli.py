"""`starter.py`: the command line for people and scripts. JSON on stdout, progress on stderr.

Exit codes: 0 success (a change that completed); 1 a change that ended otherwise, a refused
update, or a server error; 2 bad input; 3 `change --wait` stopped because the change waits for a
person (a sales decision or support).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import stripe
from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from subchange import repo, rules
from subchange.catalog import PRODUCT_IDS, default_catalog
from subchange.contracts import (
    CancelRequest,
    ChangeRequest,
    ChangeResult,
    ChangeStatus,
    ChangeStatusView,
    RetryRequest,
    SalesDecision,
    UpdateAck,
)
from subchange.db import create_tables, make_engine, session_factory
from subchange.fixtures import FixtureError, load_fixture, parse_fixture
from subchange.gateway import Gateway
from subchange.quoting import build_quote
from subchange.runtime import connect
from subchange.search_attributes import initial_search_attributes
from subchange.settings import ConfigurationError, Settings, get_settings
from workflows.subscription_change import SubscriptionChange

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_WAITING = 0, 1, 2, 3
CLI_FIELDS = {"org_id": "--org", "requested_by": "--by", "request_id": "--request-id",
              "product": "--product", "by": "--by", "note": "--note"}


class CommandError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def emit(value: BaseModel | dict[str, Any]) -> None:
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bad_input(error: ValidationError) -> CommandError:
    parts = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"]]
        if loc and loc[0] == "change":  # discriminated union: ("change", kind, field)
            field = f"--{loc[-1]}" if loc[-1] in ("seats", "plan") else "--seats/--plan"
        else:
            field = CLI_FIELDS.get(".".join(loc), ".".join(loc) or "input")
        parts.append(f"{field}: {item['msg']}")
    return CommandError("invalid input: " + "; ".join(parts), EXIT_BAD_INPUT)


def change_request(args: argparse.Namespace, request_id: str) -> ChangeRequest:
    change = ({"kind": "seats", "seats": args.seats} if args.seats is not None
              else {"kind": "plan", "plan": args.plan})
    try:
        return ChangeRequest.model_validate({
            "request_id": request_id, "org_id": args.org, "product": args.product,
            "requested_by": args.by, "change": change,
            "request_refund": getattr(args, "refund", False)})
    except ValidationError as error:
        raise bad_input(error) from None


# --- commands ------------------------------------------------------------------------------

def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"FILE: can't read {path}: {error.strerror}", EXIT_BAD_INPUT) from None
    try:
        fixture = parse_fixture(text)
    except FixtureError as error:
        raise CommandError(f"invalid fixture {path}: {error}", EXIT_BAD_INPUT) from None
    engine = make_engine(settings.database_url)
    create_tables(engine)
    with session_factory(engine)() as session:
        try:
            counts = load_fixture(fixture, session=session, gateway=Gateway(settings),
                                  settings=settings)
        except FixtureError as error:
            raise CommandError(f"invalid fixture {path}: {error}", EXIT_BAD_INPUT) from None
        except stripe.StripeError as error:
            raise CommandError(f"the payment gateway at STRIPE_API_BASE "
                               f"({settings.stripe_api_base}) failed: {error.user_message or error}; "
                               "nothing was loaded") from None
    emit({"loaded": str(path), **counts})
    return EXIT_OK


def cmd_quote(args: argparse.Namespace, settings: Settings) -> int:
    request = change_request(args, "quote-preview")
    catalog = default_catalog()
    engine = make_engine(settings.database_url)
    create_tables(engine)
    with session_factory(engine)() as session:
        ctx = repo.load_context(session=session, org_id=request.org_id, product=request.product)
    today = datetime.now(UTC).date()
    rejection = rules.authorize(catalog, request, ctx)
    target = None
    if rejection is None:
        target, rejection = rules.validate(catalog, request, ctx, today)
    if rejection is not None:
        emit({"rejected": rejection.model_dump()})
        return EXIT_FAILED
    assert target and ctx.org and ctx.subscription
    emit(build_quote(catalog=catalog, org=ctx.org, sub=ctx.subscription, request=request,
                     target=target, change_date=today))
    return EXIT_OK


def static_details(request: ChangeRequest) -> str:
    """The Web UI's Details panel (markdown): the request, and what support can do with it."""
    workflow_id = request.workflow_id
    return (f"**Request** `{request.request_id}` · refund requested: "
            f"{'yes' if request.request_refund else 'no'}\n\n"
            f"**Support** (README, Support runbook): `python starter.py status {workflow_id}` · "
            f"`retry {workflow_id}` · `cancel {workflow_id}`")


async def cmd_change(args: argparse.Namespace, settings: Settings) -> int:
    request = change_request(args, args.request_id or f"req-{uuid.uuid4().hex[:12]}")
    client = await connect(settings)
    try:
        handle = await client.start_workflow(
            SubscriptionChange.run, request.model_dump(mode="json"), id=request.workflow_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(request),
            static_summary=f"{request.describe()} (by {request.requested_by})",
            static_details=static_details(request),
        )
        started = True
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle(request.workflow_id, result_type=ChangeResult)
        started = False
    if not args.wait:
        emit({"workflow_id": handle.id, "request_id": request.request_id,
              "started": started})
        return EXIT_OK
    progress(f"{handle.id}: {request.describe()}")
    return await follow(handle)


async def follow(handle: WorkflowHandle, poll_seconds: float = 0.3) -> int:
    """Print each step on stderr as it happens; print the result, or the status when the
    change stops to wait for a person."""
    shown = 0
    while True:
        view = await handle.query("status", result_type=ChangeStatusView)
        for record in view.history[shown:]:
            if record.finished_at is None:
                continue
            detail = f" ({record.detail})" if record.detail else ""
            progress(f"  {record.step:<24} {record.outcome}{detail}")
            shown += 1
        if view.result is not None:
            result = await handle.result()
            emit(result)
            return EXIT_OK if result.status is ChangeStatus.COMPLETED else EXIT_FAILED
        if view.waiting_for:
            if shown < len(view.history):
                progress(f"  {view.history[-1].step:<24} waiting: {view.waiting_for}")
            emit(view)
            return EXIT_WAITING
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            emit(await handle.result())
            return EXIT_FAILED
        await asyncio.sleep(poll_seconds)


async def existing_handle(client: Client, workflow_id: str) -> WorkflowHandle:
    handle = client.get_workflow_handle(workflow_id, result_type=ChangeResult)
    try:
        await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(f"WORKFLOW_ID: no change {workflow_id!r}",
                               EXIT_BAD_INPUT) from None
        raise
    return handle


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    handle = await existing_handle(await connect(settings), args.workflow_id)
    emit(await handle.query("status", result_type=ChangeStatusView))
    return EXIT_OK


async def run_update(args: argparse.Namespace, settings: Settings, name: str,
                     payload: BaseModel) -> int:
    handle = await existing_handle(await connect(settings), args.workflow_id)
    try:
        ack = await handle.execute_update(name, payload, result_type=UpdateAck)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        message = getattr(cause, "message", None) or str(cause or error)
        raise CommandError(f"{name} refused: {message}") from None
    except RPCError as error:
        if "completed" in error.message or error.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(f"{name} refused: the change has already ended") from None
        raise
    emit(ack)
    return EXIT_OK


async def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    return await run_update(args, settings, "retry", RetryRequest(by=args.by))


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    return await run_update(args, settings, "cancel",
                            CancelRequest(by=args.by, reason=args.reason))


async def cmd_sales_decision(args: argparse.Namespace, settings: Settings) -> int:
    try:
        decision = SalesDecision(approved=args.approve, by=args.by, note=args.note or "")
    except ValidationError as error:
        raise bad_input(error) from None
    return await run_update(args, settings, "sales_decision", decision)


# --- argument parsing ----------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def add_change_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--org", required=True, help="organisation id")
    parser.add_argument("--product", required=True, choices=PRODUCT_IDS)
    parser.add_argument("--by", required=True, metavar="EMAIL", help="who asks for the change")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--seats", type=positive_int, help="new number of seats")
    what.add_argument("--plan", help="new plan tier")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="starter.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    load = commands.add_parser("load", help="create or update orgs, users and subscriptions")
    load.add_argument("file", metavar="FILE")
    quote = commands.add_parser("quote", help="preview the quote of a change; changes nothing")
    add_change_arguments(quote)
    change = commands.add_parser("change", help="start a change")
    add_change_arguments(change)
    change.add_argument("--refund", action="store_true", help="ask for a prorated refund")
    change.add_argument("--request-id", help="idempotency key (made up when absent)")
    change.add_argument("--wait", action="store_true", help="follow the change to its result")
    for name in ("status", "retry", "cancel"):
        command = commands.add_parser(name, help=f"the {name} {'query' if name == 'status' else 'update'}")
        command.add_argument("workflow_id", metavar="WORKFLOW_ID")
        if name != "status":
            command.add_argument("--by", help="who asks (recorded in the change's history)")
        if name == "cancel":
            command.add_argument("--reason")
    decision = commands.add_parser("sales-decision", help="record the sales team's decision")
    decision.add_argument("workflow_id", metavar="WORKFLOW_ID")
    verdict = decision.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--approve", dest="approve", action="store_true")
    verdict.add_argument("--reject", dest="approve", action="store_false")
    decision.add_argument("--by", required=True, metavar="EMAIL")
    decision.add_argument("--note")
    return parser


COMMANDS = {"load": cmd_load, "quote": cmd_quote, "change": cmd_change, "status": cmd_status,
            "retry": cmd_retry, "cancel": cmd_cancel, "sales-decision": cmd_sales_decision}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        command = COMMANDS[args.command]
        if asyncio.iscoroutinefunction(command):
            return asyncio.run(command(args, settings))
        return command(args, settings)
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    except CommandError as error:
        print(f"starter.py {args.command}: {error}", file=sys.stderr)
        return error.code
    except RPCError as error:
        print(f"starter.py {args.command}: Temporal server error: {error.message}",
              file=sys.stderr)
        return EXIT_FAILED
    except (ConnectionError, RuntimeError) as error:
        print(f"starter.py {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILED

