"""What each command's options must be, checked before the command sends or opens anything: one
model per command, the payload it sends (the workflow's contract) nested in it, so a bad option
is refused by the contract's own rule too. `options_for` is the one place a ValidationError of
the command line is met; common.bad_input names the option and the problem (exit 2)."""

from __future__ import annotations

import argparse
import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.networks import validate_email

from state_machines.lifecycle import ChangeState
from subchange.domain import webhooks as webhook_rules
from subchange.domain.catalog import PRODUCT_IDS
from subchange.domain.contracts import (
    CHANGE_OUTCOMES,
    IDENTIFIER,
    CancelRequest,
    ChangeRequest,
    RescheduleRequest,
    RetryRequest,
    SalesDecision,
    workflow_id_for,
)
from subchange.domain.principals import KEY_ROLES
from subchange.domain.sweep import PAGE_SIZE

STATES = tuple(state.value for state in ChangeState)
# A principal's `by` as the updates' contract bounds it (RetryRequest, CancelRequest).
PRINCIPAL_MAX = RetryRequest.model_fields["by"].metadata[0].max_length
# `change-<request id>`, as every change's workflow id is (ChangeRequest.workflow_id).
WORKFLOW_ID = re.compile(workflow_id_for(IDENTIFIER.removeprefix("^").removesuffix("$")))


def _address(value: str) -> str:
    """Whoever may act is known by an email address: a requester (a user of the organisation)
    or a member of the staff directory. Anything else could never be authorized."""
    validate_email(value)
    return value


def _workflow_id(value: str) -> str:
    if WORKFLOW_ID.fullmatch(value) is None:
        raise ValueError("not a change's workflow id: expected change-<request id> (letters, "
                         "digits and . _ : -, at most 64 after change-), as `change` prints it")
    return value


def _key_role(value: str) -> str:
    if value not in KEY_ROLES:
        raise ValueError(f"unknown role {value!r}: expected {', '.join(KEY_ROLES)}")
    return value


def _each_once(values: list[str]) -> list[str]:
    repeated = [value for index, value in enumerate(values) if value in values[:index]]
    if repeated:
        raise ValueError(f"{repeated[0]!r} is given more than once")
    return values


def _key_id(value: str) -> str:
    if re.fullmatch(r"[0-9a-f]{12}", value) is None:
        raise ValueError("not a key id: expected 12 lowercase hex characters, as `api-key "
                         "create` and `api-key list` print it")
    return value


Principal = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=PRINCIPAL_MAX),
                      AfterValidator(_address)]
WorkflowId = Annotated[str, AfterValidator(_workflow_id)]


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoadOptions(Options):
    file: str


class ChangeOptions(Options):
    request: ChangeRequest
    wait: bool = False

    @model_validator(mode="after")
    def _replaces_only_when_scheduled(self) -> ChangeOptions:
        # The contract ignores the pair (its JSON schema can't refuse it); a person is told.
        if self.request.replace_scheduled and self.request.effective != "period_end":
            raise ValueError("--replace-scheduled replaces a scheduled change, so it needs "
                             "--at period-end")
        return self


class ListOptions(Options):
    """`list`: the search attributes a change is found by, each optional."""

    org: Annotated[str, Field(pattern=IDENTIFIER)] | None = None
    product: Literal[PRODUCT_IDS] | None = None  # type: ignore[valid-type]
    step: Literal[STATES] | None = None  # type: ignore[valid-type]
    status: Literal[CHANGE_OUTCOMES] | None = None  # type: ignore[valid-type]
    limit: Annotated[int, Field(ge=1, le=1000)] = 20


class StatusOptions(Options):
    workflow_id: WorkflowId


class RetryOptions(StatusOptions):
    by: Principal
    update: RetryRequest


class CancelOptions(StatusOptions):
    by: Principal
    update: CancelRequest


class SalesDecisionOptions(StatusOptions):
    by: Principal
    update: SalesDecision


class RescheduleOptions(StatusOptions):
    by: Principal
    update: RescheduleRequest


class ReleaseClaimOptions(Options):
    org: Annotated[str, Field(pattern=IDENTIFIER)]
    product: Literal[PRODUCT_IDS]  # type: ignore[valid-type]
    by: Principal


class SubscriptionOptions(Options):
    org: Annotated[str, Field(pattern=IDENTIFIER)]
    product: Literal[PRODUCT_IDS]  # type: ignore[valid-type]


class SweepOptions(Options):
    page_size: Annotated[int, Field(ge=1, le=500)] = PAGE_SIZE


class ApiKeyCreateOptions(Options):
    owner: Principal  # the principal of whatever the key sends (SPEC section 9)
    roles: Annotated[list[Annotated[str, AfterValidator(_key_role)]], Field(min_length=1),
                     AfterValidator(_each_once)]


class ApiKeyListOptions(Options):
    pass


class ApiKeyRevokeOptions(Options):
    key_id: Annotated[str, AfterValidator(_key_id)]


def _endpoint_url(value: str) -> str:
    try:
        return webhook_rules.endpoint_url(value)
    except webhook_rules.EndpointRefused as refused:
        raise ValueError(refused.problem) from None


def _event_types(value: object) -> list[str]:
    """--events: types separated by commas; none given, every type."""
    if isinstance(value, list):
        return value
    types = [t.strip() for t in str(value or "").split(",") if t.strip()]
    if value is not None and not types:
        raise ValueError(f"name at least one event type, or leave --events out for all: "
                         f"{', '.join(webhook_rules.EVENT_TYPES)}")
    try:
        return webhook_rules.event_types(types)
    except webhook_rules.EndpointRefused as refused:
        raise ValueError(refused.problem) from None


def _pattern(pattern: str, what: str, where: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if re.fullmatch(pattern, value) is None:
            raise ValueError(f"not {what}: expected {where}")
        return value

    return check


EndpointId = Annotated[str, AfterValidator(_pattern(
    r"we_[0-9a-f]{24}", "an endpoint id", "we_ and 24 hex digits, as `webhook add` and `webhook "
    "list` print it"))]
EventId = Annotated[str, AfterValidator(_pattern(
    r"evt_[0-9a-f]{32}", "an event id", "evt_ and 32 hex digits, as `webhook failed` prints it "
    "(the webhook-id header)"))]


class WebhookAddOptions(Options):
    url: Annotated[str, AfterValidator(_endpoint_url)]
    events: Annotated[list[str], BeforeValidator(_event_types)] = Field(default_factory=list)


class WebhookListOptions(Options):
    pass


class WebhookEndpointOptions(Options):
    endpoint_id: EndpointId


class WebhookReplayOptions(Options):
    event_id: EventId


# --at of `change` and `quote`, as the section 7 input's `effective` spells it; anything else is
# passed on for the contract to refuse, named as --at.
EFFECTIVE = {"now": "now", "period-end": "period_end", "period_end": "period_end"}


def _change(args: argparse.Namespace, request_id: str) -> dict[str, Any]:
    change = ({"kind": "seats", "seats": args.seats} if args.seats is not None
              else {"kind": "plan", "plan": args.plan})
    return {"request": {"request_id": request_id, "org_id": args.org, "product": args.product,
                        "requested_by": args.by, "change": change,
                        "request_refund": getattr(args, "refund", False),
                        "effective": EFFECTIVE.get(args.at, args.at),
                        "replace_scheduled": getattr(args, "replace_scheduled", False)},
            "wait": getattr(args, "wait", False)}


OPTIONS: dict[str, tuple[type[Options], Callable[[argparse.Namespace], dict[str, Any]]]] = {
    "load": (LoadOptions, lambda a: {"file": a.file}),
    "quote": (ChangeOptions, lambda a: _change(a, "quote-preview")),
    "change": (ChangeOptions,
               lambda a: _change(a, a.request_id or f"req-{uuid.uuid4().hex[:12]}")),
    "list": (ListOptions, lambda a: {"org": a.org, "product": a.product, "step": a.step,
                                     "status": a.status, "limit": a.limit}),
    "status": (StatusOptions, lambda a: {"workflow_id": a.workflow_id}),
    "retry": (RetryOptions, lambda a: {"workflow_id": a.workflow_id, "by": a.by,
                                       "update": {"by": a.by}}),
    "cancel": (CancelOptions, lambda a: {"workflow_id": a.workflow_id, "by": a.by,
                                         "update": {"by": a.by, "reason": a.reason}}),
    "sales-decision": (SalesDecisionOptions, lambda a: {
        "workflow_id": a.workflow_id, "by": a.by,
        "update": {"approved": a.approve, "by": a.by, "note": a.note or ""}}),
    "reschedule": (RescheduleOptions, lambda a: {
        "workflow_id": a.workflow_id, "by": a.by,
        "update": {"by": a.by, "at": None if a.at.strip().lower() == "now" else a.at}}),
    "release-claim": (ReleaseClaimOptions, lambda a: {"org": a.org, "product": a.product,
                                                      "by": a.by}),
    "subscription": (SubscriptionOptions, lambda a: {"org": a.org, "product": a.product}),
    "sweep": (SweepOptions, lambda a: {} if a.page_size is None else {"page_size": a.page_size}),
    "api-key create": (ApiKeyCreateOptions, lambda a: {"owner": a.owner, "roles": a.role}),
    "api-key list": (ApiKeyListOptions, lambda a: {}),
    "api-key revoke": (ApiKeyRevokeOptions, lambda a: {"key_id": a.key_id}),
    "webhook add": (WebhookAddOptions, lambda a: {"url": a.url, "events": a.events}),
    "webhook list": (WebhookListOptions, lambda a: {}),
    "webhook rotate": (WebhookEndpointOptions, lambda a: {"endpoint_id": a.endpoint_id}),
    "webhook enable": (WebhookEndpointOptions, lambda a: {"endpoint_id": a.endpoint_id}),
    "webhook remove": (WebhookEndpointOptions, lambda a: {"endpoint_id": a.endpoint_id}),
    "webhook failed": (WebhookListOptions, lambda a: {}),
    "webhook replay": (WebhookReplayOptions, lambda a: {"event_id": a.event_id}),
}


def options_for(args: argparse.Namespace) -> Options:
    """The command's options, validated (raises ValidationError naming each bad one)."""
    model, fields = OPTIONS[args.command]
    return model.model_validate(fields(args))
