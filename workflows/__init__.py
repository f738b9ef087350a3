"""Workflows: deterministic orchestration of a change. No I/O, no clock, no decisions on money."""
