"""`starter.py`: the command line for people and scripts. JSON on stdout, progress on stderr.

Exit codes: 0 success (a change that completed); 1 a change that ended otherwise (rejected,
cancelled, expired, or ended from outside: terminated, timed out), a refused update, a sweep that
left a change unsettled, or a server error; 2 bad input; 3 `change --wait` stopped because the
change waits for a person (a sales decision or support) or for payment (a declined card); 4
`change --wait` stopped because the change is scheduled for its period end (SPEC section 10: it
waits for a date, not for anyone).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import NoReturn

from pydantic import ValidationError
from temporalio.service import RPCError

from subchange.app.cli.changes import (
    cmd_cancel,
    cmd_change,
    cmd_reschedule,
    cmd_retry,
    cmd_sales_decision,
    cmd_status,
)
from subchange.app.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, CommandError, bad_input
from subchange.app.cli.inputs import options_for
from subchange.app.cli.sweep import cmd_sweep
from subchange.domain.catalog import PRODUCT_IDS
from subchange.domain.principals import KEY_ROLES
from subchange.domain.webhooks import EVENT_TYPES
from subchange.settings import ConfigurationError, get_settings


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
    parser.add_argument("--at", default="now", metavar="now|period-end",
                        help="when it takes effect: now (prorated, default) or at the end of "
                             "the billing period (nothing charged now)")


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
    change.add_argument("--replace-scheduled", action="store_true",
                        help="with --at period-end: cancel the subscription's scheduled change "
                             "and take its place")
    change.add_argument("--wait", action="store_true", help="follow the change to its result")
    for name in ("status", "retry", "cancel"):
        command = commands.add_parser(
            name, help=f"the {name} {'query' if name == 'status' else 'update'}")
        command.add_argument("workflow_id", metavar="WORKFLOW_ID")
        if name == "retry":
            command.add_argument("--by", required=True, metavar="EMAIL",
                                 help="who asks: a member of support in the staff directory")
        if name == "cancel":
            command.add_argument("--by", required=True, metavar="EMAIL",
                                 help="who asks: the change's requester, or a member of support")
        if name == "cancel":
            command.add_argument("--reason")
    decision = commands.add_parser("sales-decision", help="record the sales team's decision")
    decision.add_argument("workflow_id", metavar="WORKFLOW_ID")
    verdict = decision.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--approve", dest="approve", action="store_true")
    verdict.add_argument("--reject", dest="approve", action="store_false")
    decision.add_argument("--by", required=True, metavar="EMAIL",
                          help="who decides: a member of sales, never the requester")
    decision.add_argument("--note")
    reschedule = commands.add_parser(
        "reschedule", help="staging and demos only (ALLOW_RESCHEDULE): fire a scheduled change "
                           "early")
    reschedule.add_argument("workflow_id", metavar="WORKFLOW_ID")
    reschedule.add_argument("--at", required=True, metavar="ISO|now",
                            help="when it fires: now, or a timezone-aware ISO 8601 time")
    reschedule.add_argument("--by", required=True, metavar="EMAIL",
                            help="who asks: a member of support (recorded in the audit log)")
    release = commands.add_parser(
        "release-claim", help="free a subscription held by a change that ended without "
                              "releasing it (terminated, timed out)")
    release.add_argument("--org", required=True, help="organisation id")
    release.add_argument("--product", required=True, choices=PRODUCT_IDS)
    release.add_argument("--by", required=True, metavar="EMAIL",
                         help="who asks: a member of support in the staff directory (recorded "
                              "in the audit log)")
    sweep = commands.add_parser(
        "sweep", help="settle now the changes whose workflow ended without closing them "
                      "(what the subchange-sweep schedule does every CHANGE_SWEEP_EVERY)")
    sweep.add_argument("--page-size", type=positive_int, default=None,
                       help="change records per step of the sweep (default 50)")
    add_api_key_commands(commands)
    add_webhook_commands(commands)
    return parser


def add_api_key_commands(commands) -> None:
    keys = commands.add_parser("api-key", help="create, list and revoke keys of the HTTP API")
    actions = keys.add_subparsers(dest="key_command", required=True, parser_class=Parser,
                                  metavar="{create,list,revoke}")
    create = actions.add_parser("create", help="make a key; it is printed this once")
    create.add_argument("--owner", required=True, metavar="EMAIL",
                        help="the principal of whatever the key does; a support or sales key's "
                             "owner must hold that role in the staff directory")
    create.add_argument("--role", required=True, action="append", metavar="ROLE",
                        help=f"what the key may do: {', '.join(KEY_ROLES)} (repeat for more)")
    listing = actions.add_parser("list", help="every key, newest first (never a secret)")
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", metavar="ID", help="the key's id, as `api-key list` shows it")
    for name, action in (("create", create), ("list", listing), ("revoke", revoke)):
        action.set_defaults(command=f"api-key {name}")


def add_webhook_commands(commands) -> None:
    hooks = commands.add_parser("webhook", help="the endpoints events are POSTed to (webhooks)")
    actions = hooks.add_subparsers(dest="webhook_command", required=True, parser_class=Parser,
                                   metavar="{add,list,rotate,remove,failed,replay}")
    add = actions.add_parser("add", help="add an endpoint; its secret is printed")
    add.add_argument("--url", required=True, help="where events are POSTed (http or https)")
    add.add_argument("--events", metavar="TYPE,TYPE",
                     help=f"the event types it receives (default: all): {', '.join(EVENT_TYPES)}")
    listing = actions.add_parser("list", help="every endpoint and its status (never a secret)")
    rotate = actions.add_parser("rotate", help="a new secret; the old one signs too for "
                                               "WEBHOOK_SECRET_OVERLAP")
    rotate.add_argument("endpoint_id", metavar="ID", help="the endpoint's id (webhook list)")
    remove = actions.add_parser("remove", help="remove an endpoint; it is sent nothing more")
    remove.add_argument("endpoint_id", metavar="ID", help="the endpoint's id (webhook list)")
    failed = actions.add_parser("failed", help="the events that could not be delivered")
    replay = actions.add_parser("replay", help="deliver an event again, with the same "
                                               "webhook-id")
    replay.add_argument("event_id", metavar="EVENT_ID", help="the event's id (webhook failed)")
    for name, action in (("add", add), ("list", listing), ("rotate", rotate),
                         ("remove", remove), ("failed", failed), ("replay", replay)):
        action.set_defaults(command=f"webhook {name}")


TEMPORAL_COMMANDS = {"change": cmd_change, "status": cmd_status, "retry": cmd_retry,
                     "cancel": cmd_cancel, "sales-decision": cmd_sales_decision,
                     "sweep": cmd_sweep, "reschedule": cmd_reschedule}


def command_for(name: str):
    if name in TEMPORAL_COMMANDS:
        return TEMPORAL_COMMANDS[name]
    # The commands that open the database need SQLAlchemy, Stripe and the rules, which the
    # Temporal commands (and `--help`) should not pay for at start-up.
    from subchange.app.cli import claims, database, keys, webhooks

    return {"load": database.cmd_load, "quote": database.cmd_quote,
            "release-claim": claims.cmd_release_claim,
            "api-key create": keys.cmd_api_key_create, "api-key list": keys.cmd_api_key_list,
            "api-key revoke": keys.cmd_api_key_revoke,
            **{f"webhook {action}": command
               for action, command in webhooks.WEBHOOK_COMMANDS.items()}}[name]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # Every option is checked here, before a command sends or opens anything.
        try:
            options = options_for(args)
        except ValidationError as error:
            raise bad_input(error) from None
        settings = get_settings()
        command = command_for(args.command)
        if asyncio.iscoroutinefunction(command):
            return asyncio.run(command(options, settings))
        return command(options, settings)
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

