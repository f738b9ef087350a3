"""Workflows: deterministic orchestration of a change. No I/O, no clock, no decisions on money.

Every module here but the workflow's own (subscription_change.py) is a helper of the workflow:
loaded once per worker and shared by every run instead of being executed again in each run's
sandbox, and checked for determinism from source instead (WORKFLOW_HELPERS in
subchange/app/wiring.py, tests/unit/test_workflow_helpers_are_deterministic.py).
"""
