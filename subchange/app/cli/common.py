"""What every command shares: exit codes, output (JSON on stdout, progress on stderr), errors
that name the flag, and the change request built from the flags."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydantic import BaseModel, ValidationError

from subchange.domain.contracts import ChangeRequest

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
