"""Configuration from the environment (a `.env` file may set it), with the embedded defaults.

Precedence: the environment, then `.env`, then `var/devstack.env` (the embedded stack's payload
key and codec server token, written by `python -m subchange.dev`), then the defaults below.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cache
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from subchange.domain.contracts import describe_validation_error
from subchange.domain.seller import Seller, registration_number_problem
from subchange.payload_keys import parse_keys

DEVSTACK_ENV_FILE = "var/devstack.env"  # relative to the working directory, like the database


# backend[+driver]://rest, as SQLAlchemy's URLs are written.
DATABASE_URL = re.compile(r"(?P<backend>[A-Za-z][A-Za-z0-9]*)(\+[A-Za-z0-9_]+)?://.*", re.DOTALL)
DURATION_WITH_UNIT = re.compile(r"(?P<number>-?\d+(\.\d+)?)\s*(?P<unit>[smhdwSMHDW])")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
ISO_DURATION = TypeAdapter(timedelta)
# SPEC section 13: 5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h: the last retry about three
# days after the first attempt.
WEBHOOK_RETRY_SCHEDULE = "PT5S,PT5M,PT30M,PT2H,PT5H" + ",PT10H" * 6
# SPEC section 11: a soft decline is tried again after 1, then 2, 2 and 2 more days: four
# retries within a week (docs/payment-recovery.md says why).
PAYMENT_RETRY_SCHEDULE = "P1D,P2D,P2D,P2D"


def iso_durations(value: str) -> tuple[timedelta, ...]:
    """Waits written as ISO 8601 durations separated by commas (PT5S,PT5M,P1D): a schedule of
    retries, in settings and fixture files alike."""
    delays = []
    for index, text in enumerate(value.split(","), start=1):
        text = text.strip()
        try:
            if not text.upper().startswith("P"):
                raise ValueError
            delay = ISO_DURATION.validate_python(text)
        except (ValueError, ValidationError):
            raise ValueError(f"item {index} ({text!r}) is not an ISO 8601 duration: expected "
                             "e.g. PT5S,PT5M,PT30M,PT2H") from None
        delays.append(delay)
    return tuple(delays)


def positive_delays(value: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
    if not value or any(delay <= timedelta(0) for delay in value):
        raise ValueError("every wait must be a positive duration, e.g. PT5S,PT5M,PT30M")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=(DEVSTACK_ENV_FILE, ".env"), extra="ignore",
                                      case_sensitive=False)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "subscription-changes"
    # Secrets stay out of reprs and logs: the URL may hold a password.
    database_url: str = Field(default="sqlite:///var/subchange.db", repr=False)
    stripe_api_key: str = Field(default="sk_test_localstripe", repr=False)
    stripe_api_base: str = "http://localhost:8420"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=8025, ge=1, le=65535)
    # How the connection to the mail server is secured: none (the local server), starttls
    # (upgrade on the submission port, 587), tls (implicit TLS, 465). Certificates are verified
    # against the system's CAs, or SMTP_CA_FILE's.
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_ca_file: str = ""
    # AUTH when a username is set (only over starttls or tls: a password is never sent in clear).
    smtp_username: str = ""
    smtp_password: str = Field(default="", repr=False)
    mail_from: str = "billing@subchange.example"
    # The issuer every invoice names (SPEC section 14). A qualified invoice needs all three; the
    # embedded stack and compose set a demo seller, a worker refuses to start without one.
    seller_name: str = ""
    seller_address: str = ""
    seller_registration_number: str = ""
    sales_decision_timeout: timedelta = timedelta(days=14)
    web_ui_url: str = "http://localhost:8233"
    # Payload encryption keys, "id:base64key,..." (the first seals, all open); empty: plain.
    payload_keys: str = Field(default="", repr=False)
    # Bearer token the codec server asks of the Web UI and the temporal CLI.
    codec_server_token: str = Field(default="", repr=False)
    log_format: Literal["text", "json"] = "text"
    # Where `python api.py` serves the HTTP API (SPEC section 12).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # host:port for the worker's Prometheus endpoint (/metrics); empty: no endpoint.
    metrics_bind_address: str = ""
    # host:port where the worker answers GET /healthz (200 while it reaches Temporal and the
    # database, 503 otherwise or once it is draining); empty: no endpoint.
    health_bind_address: str = ""
    # On SIGTERM the worker stops polling and lets the steps it runs finish for this long before
    # cancelling them (compose's stop_grace_period must be longer).
    graceful_shutdown_timeout: timedelta = timedelta(seconds=30)
    # How many steps (activities) and workflow tasks one worker runs at once.
    max_concurrent_activities: int = Field(default=16, ge=1)
    max_concurrent_workflow_tasks: int = Field(default=100, ge=2)  # the SDK's own default
    # Whether worker.py registers missing search attributes itself (the embedded stack, one
    # namespace of one's own). False where the migrate job does it (`python -m
    # subchange.app.migrate`) and the worker's credentials may not: it only checks them then.
    register_search_attributes: bool = True
    # The workflow sandbox skips the SDK's per-payload serialization-context lookup (about 15 ms of
    # worker CPU per change) by leaning on temporalio's private API: false runs the plain sandbox
    # (subchange/app/sandbox.py).
    sandbox_context_shortcut: bool = True
    # Webhooks (SPEC section 13): the waits between the attempts of a delivery (ISO 8601
    # durations, comma separated; when they run out the endpoint is marked failing), how often a
    # relay looks for events whose wake-up was lost, and how long a rotated secret still signs.
    webhook_retry_schedule: Annotated[tuple[timedelta, ...], NoDecode] = Field(
        default=WEBHOOK_RETRY_SCHEDULE, validate_default=True)
    webhook_poll_every: timedelta = timedelta(seconds=30)
    webhook_secret_overlap: timedelta = timedelta(hours=24)
    # How long an event delivered to every endpoint stays in the outbox (for `webhook replay`
    # to a receiver that lost it) before the reconciliation sweep deletes it.
    outbox_retention: timedelta = timedelta(days=30)
    # Payment recovery (SPEC section 11): the waits between a declined charge's attempts (ISO 8601
    # durations, comma separated); when they run out the change waits for support.
    payment_retry_schedule: Annotated[tuple[timedelta, ...], NoDecode] = Field(
        default=PAYMENT_RETRY_SCHEDULE, validate_default=True)
    # How often the reconciliation sweep (a Temporal Schedule that worker.py registers) settles
    # the changes whose workflow ended without closing them (SPEC section 11).
    change_sweep_every: timedelta = timedelta(minutes=15)
    # Staging and demos only: the `reschedule` update may fire a scheduled change (SPEC section
    # 10) before its period end. A production worker refuses it.
    allow_reschedule: bool = False
    # Fault injection for the crash tests: pause at these named points (comma separated).
    fault_pause_points: str = ""
    fault_pause_seconds: float = 30.0

    @field_validator("sales_decision_timeout", mode="before")
    @classmethod
    def _duration_with_unit(cls, value: object) -> object:
        # A bare number is ambiguous (14 read as seconds expired changes before sales looked):
        # take an ISO 8601 duration or a number with its unit.
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.upper().startswith(("P", "-P")):
            return text
        match = DURATION_WITH_UNIT.fullmatch(text)
        if match is None:
            raise ValueError("needs a unit: 14d, 36h, 90m, 30s, 2w, or an ISO 8601 duration "
                             "such as P14D")
        number, unit = float(match["number"]), match["unit"].lower()
        return timedelta(**{DURATION_UNITS[unit]: number})

    @field_validator("sales_decision_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. P14D or 14d")
        return value

    @field_validator("webhook_retry_schedule", "payment_retry_schedule", mode="before")
    @classmethod
    def _iso_durations(cls, value: object) -> object:
        return iso_durations(value) if isinstance(value, str) else value

    @field_validator("webhook_retry_schedule", "payment_retry_schedule")
    @classmethod
    def _some_positive_delays(cls, value: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        return positive_delays(value)

    @field_validator("webhook_poll_every", "webhook_secret_overlap", "change_sweep_every",
                     "graceful_shutdown_timeout", "outbox_retention", mode="before")
    @classmethod
    def _iso_duration(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().upper().lstrip("-").startswith("P"):
            raise ValueError("must be an ISO 8601 duration, e.g. PT30S or PT24H")
        return value

    @field_validator("webhook_poll_every", "webhook_secret_overlap", "change_sweep_every",
                     "graceful_shutdown_timeout", "outbox_retention")
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. PT30S or PT24H")
        return value

    @field_validator("change_sweep_every")
    @classmethod
    def _whole_seconds(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1) or value.microseconds:
            raise ValueError("must be whole seconds, at least PT1S (a Temporal Schedule's "
                             "interval), e.g. PT15M")
        return value

    @model_validator(mode="after")
    def _smtp_auth_over_tls(self) -> Settings:
        if self.smtp_username and self.smtp_security == "none":
            raise ValueError("smtp_username: AUTH needs SMTP_SECURITY=starttls or tls, so the "
                             "password is not sent in clear")
        return self

    @field_validator("seller_registration_number")
    @classmethod
    def _registration_number(cls, value: str) -> str:
        value = value.strip().upper()
        if value and (problem := registration_number_problem(value)) is not None:
            raise ValueError(problem)
        return value

    def seller(self) -> Seller:
        """The issuer of the invoices; ConfigurationError naming what is missing."""
        missing = [name.upper() for name in ("seller_name", "seller_address",
                                             "seller_registration_number")
                   if not getattr(self, name).strip()]
        if missing:
            raise ConfigurationError(
                f"configuration error: {', '.join(missing)}: not set; invoices name their "
                "issuer (SELLER_NAME, SELLER_ADDRESS, SELLER_REGISTRATION_NUMBER = T + 13 digits)")
        return Seller(name=self.seller_name.strip(), address=self.seller_address.strip(),
                      registration_number=self.seller_registration_number)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # Read without SQLAlchemy, which the commands that never open the database (starter.py
        # change, status, the updates) should not pay about 0.2 s to import.
        url = DATABASE_URL.match(value)
        if url is None:
            raise ValueError("must be a database URL, e.g. sqlite:///var/subchange.db or "
                             "postgresql+psycopg://user:password@host/db")
        if url["backend"] not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {url['backend']!r}: use sqlite or "
                             "postgresql")
        return value

    @field_validator("payload_keys")
    @classmethod
    def _payload_keys(cls, value: str) -> str:
        parse_keys(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("stripe_api_key")
    @classmethod
    def _stripe_key(cls, value: str) -> str:
        if not value.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
            raise ValueError("must be a Stripe secret key (sk_test_... or sk_live_...)")
        return value

    @property
    def gateway_test_mode(self) -> bool:
        """Test cards are accepted only against a test key or a local gateway (SPEC section 7)."""
        local = any(h in self.stripe_api_base for h in ("localhost", "127.0.0.1", "[::1]"))
        return self.stripe_api_key.startswith(("sk_test_", "rk_test_")) or local


class ConfigurationError(Exception):
    """Raised with a message naming each bad variable."""


@cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(
            "configuration error: " + describe_validation_error(error, env_names=True)
        ) from None
