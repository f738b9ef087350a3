"""Pure rules as `transitions` state machines: plan tiers (R5, R6, R7) and the change lifecycle."""
