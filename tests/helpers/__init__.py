"""What the rooms share, one job a module:

- `services`: the real services, started locally (database, localstripe, SMTP sink, the Temporal
  time-skipping and dev servers) and the application's settings and dependencies on them.
- `documents`: fixture documents (orgs, users, cards, billing periods), written or loaded.
- `driver`: starting and driving changes through the workflow, waiting for their states.
- `observers`: what a user can see: gateway charges and refunds, database rows, search
  attributes, the mailbox with its emails and PDF invoices.
- `money_oracle`: what a change should cost, recomputed independently of the code under test.
- `processes`: `worker.py` and `starter.py` as separate processes, and their environment.
- `web_ui`: the operator's steps in the Temporal Web UI, in Chromium through Playwright.
"""
