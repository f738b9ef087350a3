"""Log set-up for the worker: text for people, JSON lines (LOG_FORMAT=json) for log pipelines.

Activity and workflow records from the SDK's loggers carry `temporal_activity` /
`temporal_workflow` (workflow id, activity type = the step, attempt), which the JSON lines keep
as fields. Nothing logs card numbers or keys: the service only ever holds gateway ids.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

# Libraries that log every request, state change or font subset at INFO: a line per gateway call
# and per state, thousands a minute under load, none of use to an operator (the steps log what
# they did). Their warnings and errors still show.
QUIET_LIBRARIES = ("stripe", "transitions", "fontTools", "fpdf")


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(logging.WARNING)
