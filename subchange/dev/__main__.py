"""The embedded stack from the checkout: `python -m subchange.dev up` runs it until Ctrl-C;
`python -m subchange.dev demo` also loads the demo organisations and runs the source documents'
cases (subchange/dev/demo.py). `make demo` and `make up` call this."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from subchange.dev.demo import run_demo
from subchange.dev.devstack import ROOT, Stack, wait_forever
from subchange.settings import DEVSTACK_ENV_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m subchange.dev",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "demo"])
    parser.add_argument("--var", type=Path, default=ROOT / "var",
                        help="where databases, mail and logs go (default: ./var)")
    parser.add_argument("--exit", action="store_true",
                        help="stop the stack after the demo instead of keeping it running")
    args = parser.parse_args(argv)
    stack = Stack(var=args.var.resolve())
    with stack.running():
        print(f"Temporal Web UI: {stack.web_ui}\n"
              f"Codec server:    {stack.codec_endpoint} (sign in with the token "
              f"{stack.secrets['CODEC_SERVER_TOKEN']} to read payloads in the Web UI)\n"
              f"Emails land in:  {stack.maildir}/new/\n"
              f"HTTP API:        {stack.api} (interactive docs: {stack.api}/docs; OpenAPI: "
              f"{stack.api}/openapi.json)\n"
              + "".join(f"  demo key, role {role:<8} {key}\n"
                        for role, key in stack.api_keys.items())
              + f"  (kept in {stack.env_file}; send as Authorization: Bearer <key>)",
              file=sys.stderr, flush=True)
        if stack.env_file != ROOT / DEVSTACK_ENV_FILE:
            print(f"Payloads are encrypted: export the variables in {stack.env_file} before "
                  "running starter.py", file=sys.stderr, flush=True)
        if args.command == "demo":
            code = run_demo(stack)
            if args.exit or code:
                return code
        wait_forever(stack)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip finalisation: see starter.py (temporalio/sdk-python#300)
