"""`subchange` (also `python starter.py`): the command line for support staff, operators and
scripts. JSON on stdout (`--output text` for people), progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

import argcomplete
from pydantic import ValidationError
from temporalio.service import RPCError

from state_machines.lifecycle import ChangeState
from subchange.app.cli import common
from subchange.app.cli.changes import (
    cmd_cancel,
    cmd_change,
    cmd_list,
    cmd_reschedule,
    cmd_retry,
    cmd_sales_decision,
    cmd_status,
)
from subchange.app.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    bad_input,
)
from subchange.app.cli.inputs import options_for
from subchange.app.cli.sweep import cmd_sweep
from subchange.app.tracing import traced_as
from subchange.domain.catalog import PRODUCT_IDS
from subchange.domain.contracts import CHANGE_OUTCOMES
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


EXIT_CODES = """exit codes:
  0  done (a change that completed)
  1  a change that ended otherwise (rejected, cancelled, expired, or ended from outside:
     terminated, timed out), a refused update, a sweep that left a change unsettled, or a
     server error
  2  bad input: the message names the option and the problem
  3  change --wait: the change waits for a person (a sales decision, support) or for payment
  4  change --wait: the change is scheduled for its period end (it waits for a date)"""

EXAMPLES = """examples:
  {prog} list --step awaiting_support --output text
  {prog} status change-req-1a2b3c --output text
  {prog} retry change-req-1a2b3c --by support@subchange.example
  {prog} change --org acme --product one --by admin@acme.example --seats 12 --wait"""


COMMAND_EXIT_CODES = "exit codes: 0 done, 1 failed or refused, 2 bad input"


def examples(parser: argparse.ArgumentParser, *lines: str) -> None:
    """The example lines at the end of a command's --help, under its own name, and its exit
    codes (`change` adds those of --wait)."""
    codes = COMMAND_EXIT_CODES + (",\n  3 --wait: it waits for a person or for payment, 4 "
                                  "--wait: it is scheduled for the period end"
                                  if parser.prog.endswith(" change") else "")
    parser.epilog = "example" + ("s" if len(lines) > 1 else "") + ":\n" + "\n".join(
        f"  {parser.prog} {line}" for line in lines) + "\n\n" + codes


def own_version() -> str:
    try:
        return version("subchange")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def build_parser(prog: str = "subchange") -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=__doc__.split("\n\n")[0].replace("\n", " "),
                    epilog=EXIT_CODES + "\n\n" + EXAMPLES.format(prog=prog),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {own_version()}")
    parser.add_argument("--output", choices=common.OUTPUTS, default="json",
                        help="json (default, for scripts) or text (for people)")
    # --output after the command too (`subchange list --output text`); SUPPRESS keeps the one
    # given before it when this one is absent.
    output = Parser(add_help=False)
    output.add_argument("--output", choices=common.OUTPUTS, default=argparse.SUPPRESS,
                        help="json (default, for scripts) or text (for people)")

    def add(name: str, help: str, *example: str, parent=None) -> argparse.ArgumentParser:
        command = (parent or commands).add_parser(
            name, help=help, description=help[0].upper() + help[1:] + ".",
            parents=[output], formatter_class=argparse.RawDescriptionHelpFormatter)
        if example:
            examples(command, *example)
        return command

    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                     metavar="COMMAND")
    listing = add("list", "list changes by their step, organisation, product and status: the "
                          "running ones first, then by when they ended",
                  "--step awaiting_support --output text", "--org acme --status running",
                  "--product one --step scheduled --limit 100")
    listing.add_argument("--step", choices=[state.value for state in ChangeState],
                         metavar="STEP", help="the lifecycle state the change is in (ChangeStep):"
                         " awaiting_support, awaiting_payment, awaiting_sales, scheduled, ...")
    listing.add_argument("--org", help="organisation id")
    listing.add_argument("--product", choices=PRODUCT_IDS)
    listing.add_argument("--status", choices=CHANGE_OUTCOMES,
                         help="running, or how it ended")
    listing.add_argument("--limit", type=positive_int, default=20,
                         help="at most this many (default 20, up to 1000)")
    load = add("load", "create or update orgs, users and subscriptions from a fixture file",
               "fixtures.json")
    load.add_argument("file", metavar="FILE")
    quote = add("quote", "preview the quote of a change; changes nothing",
                "--org acme --product one --by admin@acme.example --seats 12")
    add_change_arguments(quote)
    change = add("change", "start a change",
                 "--org acme --product one --by admin@acme.example --seats 12 --wait",
                 "--org acme --product one --by admin@acme.example --plan free "
                 "--at period-end")
    add_change_arguments(change)
    change.add_argument("--refund", action="store_true", help="ask for a prorated refund")
    change.add_argument("--request-id", help="idempotency key (made up when absent)")
    change.add_argument("--replace-scheduled", action="store_true",
                        help="with --at period-end: cancel the subscription's scheduled change "
                             "and take its place")
    change.add_argument("--wait", action="store_true", help="follow the change to its result")
    status = add("status", "a change's state, steps, last error and result (the status query)",
                 "change-req-1a2b3c --output text")
    status.add_argument("workflow_id", metavar="WORKFLOW_ID")
    def update(name: str, help: str, example: str, who: str) -> argparse.ArgumentParser:
        """A command that sends one of the change's updates, as the person --by names."""
        command = add(name, help, f"change-req-1a2b3c {example}")
        command.add_argument("workflow_id", metavar="WORKFLOW_ID")
        command.add_argument("--by", required=True, metavar="EMAIL", help=f"who asks: {who}")
        return command

    update("retry", "run the failed step of a change waiting for support (or for payment) "
                    "again (the retry update)",
           "--by support@subchange.example", "a member of support in the staff directory")
    cancel = update("cancel", "cancel a change; a charge already taken is refunded (the cancel "
                              "update)",
                    "--by support@subchange.example --reason 'duplicate'",
                    "the change's requester, or a member of support")
    cancel.add_argument("--reason")
    decision = update("sales-decision", "record the sales team's decision",
                      "--approve --by sales@subchange.example",
                      "a member of sales, never the requester")
    verdict = decision.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--approve", dest="approve", action="store_true")
    verdict.add_argument("--reject", dest="approve", action="store_false")
    decision.add_argument("--note")
    reschedule = update("reschedule", "staging and demos only (ALLOW_RESCHEDULE): fire a "
                                      "scheduled change early",
                        "--at now --by support@subchange.example",
                        "a member of support (recorded in the audit log)")
    reschedule.add_argument("--at", required=True, metavar="ISO|now",
                            help="when it fires: now, or a timezone-aware ISO 8601 time")
    subscription = add("subscription", "a subscription as it stands: plan, seats, active "
                                       "users, seat limits, plan moves allowed now, card, and "
                                       "the change scheduled or in progress",
                       "--org acme --product desk --output text")
    subscription.add_argument("--org", required=True, help="organisation id")
    subscription.add_argument("--product", required=True, choices=PRODUCT_IDS)
    release = add("release-claim", "free a subscription held by a change that ended without "
                                   "releasing it (terminated, timed out)",
                  "--org acme --product one --by support@subchange.example")
    release.add_argument("--org", required=True, help="organisation id")
    release.add_argument("--product", required=True, choices=PRODUCT_IDS)
    release.add_argument("--by", required=True, metavar="EMAIL",
                         help="who asks: a member of support in the staff directory (recorded "
                              "in the audit log)")
    sweep = add("sweep", "settle now the changes whose workflow ended without closing them "
                         "(what the subchange-sweep schedule does every CHANGE_SWEEP_EVERY)",
                "--page-size 100")
    sweep.add_argument("--page-size", type=positive_int, default=None,
                       help="change records per step of the sweep (default 50)")
    completion = add("completion", "print the shell code that completes the subchange "
                                   "command's commands, options and values",
                     'bash >> ~/.bashrc   (or: eval "$(subchange completion bash)")')
    completion.add_argument("shell", choices=("bash", "zsh", "fish", "tcsh", "powershell"))
    add_api_key_commands(commands, add)
    add_webhook_commands(commands, add)
    return parser


def add_api_key_commands(commands, add) -> None:
    keys = add("api-key", "create, list and revoke keys of the HTTP API")
    actions = keys.add_subparsers(dest="key_command", required=True, parser_class=Parser,
                                  metavar="{create,list,revoke}")
    create = add("create", "make a key; it is printed this once",
                 "--owner ops@backend.example --role backend", parent=actions)
    create.add_argument("--owner", required=True, metavar="EMAIL",
                        help="the principal of whatever the key does; a support or sales key's "
                             "owner must hold that role in the staff directory")
    create.add_argument("--role", required=True, action="append", metavar="ROLE",
                        help=f"what the key may do: {', '.join(KEY_ROLES)} (repeat for more)")
    listing = add("list", "every key, newest first (never a secret)", "--output text",
                  parent=actions)
    revoke = add("revoke", "revoke a key at once", "4f1c9a2b7e0d", parent=actions)
    revoke.add_argument("key_id", metavar="ID", help="the key's id, as `api-key list` shows it")
    for name, action in (("create", create), ("list", listing), ("revoke", revoke)):
        action.set_defaults(command=f"api-key {name}")


def add_webhook_commands(commands, add) -> None:
    hooks = add("webhook", "the endpoints events are POSTed to (webhooks)")
    actions = hooks.add_subparsers(dest="webhook_command", required=True, parser_class=Parser,
                                   metavar="{add,list,rotate,enable,remove,failed,replay}")
    adding = add("add", "add an endpoint; its secret is printed",
                 "--url https://backend.example/hooks --events change.completed,change.rejected",
                 parent=actions)
    adding.add_argument("--url", required=True, help="where events are POSTed (http or https)")
    adding.add_argument("--events", metavar="TYPE,TYPE",
                        help="the event types it receives (default: all): "
                             f"{', '.join(EVENT_TYPES)}")
    listing = add("list", "every endpoint and its status (never a secret)", "--output text",
                  parent=actions)
    rotate = add("rotate", "a new secret; the old one signs too for WEBHOOK_SECRET_OVERLAP",
                 "we_5f0c2a9d1b7e3c4a6f8d0b2e", parent=actions)
    rotate.add_argument("endpoint_id", metavar="ID", help="the endpoint's id (webhook list)")
    enable = add("enable", "make an endpoint disabled by a 410 Gone active again, once its "
                           "receiver is back (then replay what it missed: webhook failed)",
                 "we_5f0c2a9d1b7e3c4a6f8d0b2e", parent=actions)
    enable.add_argument("endpoint_id", metavar="ID", help="the endpoint's id (webhook list)")
    remove = add("remove", "remove an endpoint; it is sent nothing more",
                 "we_5f0c2a9d1b7e3c4a6f8d0b2e", parent=actions)
    remove.add_argument("endpoint_id", metavar="ID", help="the endpoint's id (webhook list)")
    failed = add("failed", "the events that could not be delivered", "--output text",
                 parent=actions)
    replay = add("replay", "deliver an event again, with the same webhook-id",
                 "evt_3f9a0c7e5b1d2a4c6e8f0a1b3c5d7e9f", parent=actions)
    replay.add_argument("event_id", metavar="EVENT_ID", help="the event's id (webhook failed)")
    for name, action in (("add", adding), ("list", listing), ("rotate", rotate),
                         ("enable", enable), ("remove", remove), ("failed", failed),
                         ("replay", replay)):
        action.set_defaults(command=f"webhook {name}")


TEMPORAL_COMMANDS = {"list": cmd_list, "change": cmd_change, "status": cmd_status,
                     "retry": cmd_retry,
                     "cancel": cmd_cancel, "sales-decision": cmd_sales_decision,
                     "sweep": cmd_sweep, "reschedule": cmd_reschedule}


def command_for(name: str):
    if name in TEMPORAL_COMMANDS:
        return TEMPORAL_COMMANDS[name]
    # The commands that open the database need SQLAlchemy, Stripe and the rules, which the
    # Temporal commands (and `--help`) should not pay for at start-up.
    from subchange.app.cli import claims, database, keys, webhooks

    return {"load": database.cmd_load, "quote": database.cmd_quote,
            "subscription": database.cmd_subscription,
            "release-claim": claims.cmd_release_claim,
            "api-key create": keys.cmd_api_key_create, "api-key list": keys.cmd_api_key_list,
            "api-key revoke": keys.cmd_api_key_revoke,
            **{f"webhook {action}": command
               for action, command in webhooks.WEBHOOK_COMMANDS.items()}}[name]


def completion(shell: str, prog: str) -> int:
    """The shell code that asks this program for completions (argcomplete)."""
    print(argcomplete.shellcode([prog], shell=shell), end="")
    return EXIT_OK


def main(argv: list[str] | None = None, prog: str = "subchange") -> int:
    parser = build_parser(prog)
    # Answers the shell's completion request (_ARGCOMPLETE set) and exits; nothing otherwise.
    argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    common.output = args.output
    if args.command == "completion":
        return completion(args.shell, prog)
    try:
        # Every option is checked here, before a command sends or opens anything.
        try:
            options = options_for(args)
        except ValidationError as error:
            raise bad_input(error) from None
        settings = get_settings()
        command = command_for(args.command)
        with traced_as("cli"):  # off unless OTEL_EXPORTER_OTLP_ENDPOINT is set
            if asyncio.iscoroutinefunction(command):
                return asyncio.run(command(options, settings))
            return command(options, settings)
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    except CommandError as error:
        print(f"{prog} {args.command}: {error}", file=sys.stderr)
        return error.code
    except RPCError as error:
        print(f"{prog} {args.command}: Temporal server error: {error.message}",
              file=sys.stderr)
        return EXIT_FAILED
    except (ConnectionError, RuntimeError) as error:
        if "Failed client connect" in str(error):  # the SDK's words for a server not there
            error = ConnectionError(f"TEMPORAL_ADDRESS: can't reach the Temporal server at "
                                    f"{get_settings().temporal_address} ({error})")
        print(f"{prog} {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILED


def run() -> NoReturn:
    """The `subchange` console script, and `python starter.py`: named as it was called."""
    called = Path(sys.argv[0]).name
    code = main(prog="starter.py" if called == "starter.py" else "subchange")
    # The Temporal client's Rust threads can abort CPython's finalisation ("PyGILState_Release",
    # temporalio/sdk-python#300), turning a good exit into SIGABRT; leave without finalising.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
