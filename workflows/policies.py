"""Timeouts and retry policies of each step of the change pipeline.

A step whose retries run out does not fail the workflow: the change parks in awaiting_support.
Error types listed as non-retryable are outcomes a retry can't change by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy


@dataclass(frozen=True)
class StepPolicy:
    start_to_close: timedelta
    retry: RetryPolicy


def _policy(seconds: int, attempts: int, max_interval: int, *non_retryable: str) -> StepPolicy:
    return StepPolicy(
        start_to_close=timedelta(seconds=seconds),
        retry=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=max_interval),
                          maximum_attempts=attempts,
                          non_retryable_error_types=list(non_retryable)),
    )


DATABASE = _policy(20, 6, 15)
STEPS: dict[str, StepPolicy] = {
    "open_change": DATABASE,
    "authorize_admin": DATABASE,
    "validate_change": DATABASE,
    "quote_change": DATABASE,
    "open_sales_case": DATABASE,
    "close_sales_case": DATABASE,
    "charge": _policy(30, 5, 20, "CardDeclined", "NoPaymentMethod"),
    "refund_charge": _policy(30, 8, 60),
    "apply_change": _policy(20, 6, 15, "StaleSubscription"),
    "email_invoice": _policy(30, 8, 60),
    "open_refund_ticket": DATABASE,
    "close_change": _policy(20, 10, 60),
}
