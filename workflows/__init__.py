"""Workflows: deterministic orchestration of a change, the relays that deliver its events to
webhook endpoints, and the sweep that settles changes ended from outside. No I/O, no clock, no
decisions on money.

Every module here but the workflows' own (subscription_change.py, webhook_relay.py, sweep.py) is
a helper: loaded once per worker and shared by every run instead of being executed again in each
run's sandbox, and checked for determinism from source instead (WORKFLOW_HELPERS in
subchange/app/wiring.py, tests/unit/test_workflow_helpers_are_deterministic.py).
"""
