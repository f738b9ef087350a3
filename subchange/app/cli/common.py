"""What every command shares: exit codes, output (JSON on stdout for scripts, or `--output text`
for people; progress on stderr), and errors that name the option."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_WAITING = 0, 1, 2, 3
EXIT_SCHEDULED = 4  # `change --wait` of a change that waits for its period end (SPEC 10)
# A field of a command's options (subchange/app/cli/inputs.py) or of the payload nested in
# them, by the option it comes from.
CLI_FIELDS = {"org_id": "--org", "org": "--org", "requested_by": "--by",
              "request_id": "--request-id", "product": "--product", "by": "--by",
              "note": "--note", "reason": "--reason", "workflow_id": "WORKFLOW_ID",
              "file": "FILE", "approved": "--approve/--reject",
              "owner": "--owner", "roles": "--role", "key_id": "ID",
              "page_size": "--page-size", "url": "--url", "events": "--events",
              "endpoint_id": "ID", "event_id": "EVENT_ID", "effective": "--at",
              "replace_scheduled": "--replace-scheduled", "at": "--at", "step": "--step",
              "status": "--status", "limit": "--limit"}


class CommandError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


OUTPUTS = ("json", "text")
output = "json"  # main() sets it from --output, once per run


def emit(value: BaseModel | dict[str, Any] | list[Any]) -> None:
    data = jsonable(value)
    if output == "text":
        print(as_text(data))
    else:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


def as_text(data: Any, indent: str = "") -> str:
    """The JSON a command prints, for people: `key: value` lines, a nested object indented under
    its key, a list of objects as a table; `-` for nothing."""
    if isinstance(data, list):
        if data and all(isinstance(item, dict) for item in data):
            return table(data, indent)
        return "\n".join(f"{indent}{_cell(item)}" for item in data) or f"{indent}(none)"
    if not isinstance(data, dict):
        return f"{indent}{_cell(data)}"
    lines = []
    for key, value in data.items():
        if isinstance(value, dict | list) and value:
            lines.append(f"{indent}{key}:")
            lines.append(as_text(value, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {_cell(value)}")
    return "\n".join(lines)


def table(rows: list[dict[str, Any]], indent: str = "") -> str:
    """Aligned columns under upper-case headings; a nested value is shown as compact JSON."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells))
              for i, column in enumerate(columns)]
    lines = [[column.upper() for column in columns], *cells]
    return "\n".join(indent + "  ".join(cell.ljust(width) for cell, width in
                                        zip(line, widths, strict=True)).rstrip()
                     for line in lines)


# A timestamp as the JSON writes it (2026-12-07T06:12:40.801146Z), shown to the second for people.
TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _cell(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if isinstance(value, str) and (moment := TIMESTAMP.fullmatch(value)):
        return f"{moment[1]} {moment[2]}{moment[3]}"
    return str(value)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def option_of(loc: Sequence[int | str]) -> str:
    """The option a validation error's location comes from: `--by` for `update.by`; empty for
    a problem of several options together, whose message names them."""
    names = [str(p) for p in loc if isinstance(p, str)]
    if "change" in names:  # discriminated union: (..., "change", kind, field)
        return f"--{names[-1]}" if names[-1] in ("seats", "plan") else "--seats/--plan"
    return next((CLI_FIELDS[name] for name in reversed(names) if name in CLI_FIELDS),
                ".".join(names))


def bad_input(error: ValidationError) -> CommandError:
    """Bad options, each named with its problem (once, though the payload repeats it)."""
    parts: list[str] = []
    for item in error.errors():
        problem = item["msg"].removeprefix("Value error, ")
        if item["type"] == "string_too_long" and isinstance(item.get("input"), str):
            problem += f" (got {len(item['input'])})"
        option = option_of(item["loc"])
        part = f"{option}: {problem}" if option else problem
        if part not in parts:
            parts.append(part)
    return CommandError("invalid input: " + "; ".join(parts), EXIT_BAD_INPUT)
