"""Log set-up for the worker: text for people, JSON lines (LOG_FORMAT=json) for log pipelines.

Activity and workflow records from the SDK's loggers carry `temporal_activity` /
`temporal_workflow` (workflow id, activity type = the step, attempt), which the JSON lines keep
as fields. Nothing logs card numbers or keys: the service only ever holds gateway ids.

No line holds an email address. The code keeps them out at the source (database errors hide
their bound values, mail errors and the contracts' validation errors quote no address); as a
second line, whatever the handler writes (a library's message, an exception's text, a database
server's DETAIL, a warning, which is routed here too) has anything shaped like an address
replaced by `[address]` (subchange.domain.redaction).
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from subchange.domain.redaction import without_addresses

# Libraries that log every request, state change or font subset at INFO: a line per gateway call
# and per state, thousands a minute under load, none of use to an operator (the steps log what
# they did). Their warnings and errors still show.
QUIET_LIBRARIES = ("stripe", "transitions", "fontTools", "fpdf")


class TextLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return without_addresses(super().format(record))


class JsonLines(JsonFormatter):
    """Addresses are taken out of the fields before they are encoded (in the encoded line an
    escape such as `\\n` may run into one)."""

    def process_log_record(self, log_data):
        return {key: _without_addresses(value)
                for key, value in super().process_log_record(log_data).items()}


def _without_addresses(value):
    if isinstance(value, str):
        return without_addresses(value)
    if isinstance(value, dict):
        return {key: _without_addresses(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_addresses(item) for item in value]
    return value


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLines(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(TextLines("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.captureWarnings(True)  # a warning is a line like the others: through the handler
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(logging.WARNING)
