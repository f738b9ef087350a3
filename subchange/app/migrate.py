"""The deployment's one-shot set-up job (compose's `migrate`, `subchange migrate`): bring the
database to the latest migration, register the search attributes the changes are listed by, and
register (or update) the reconciliation sweep's schedule. Idempotent: run it on every deploy.

It needs the operator's rights that workers need not have: adding search attributes is an
operator call. Workers started with REGISTER_SEARCH_ATTRIBUTES=false only check them.

Exit codes: 0 done, 1 failed (the database or Temporal), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from temporalio.service import RPCError

from subchange.app.client import connect, ensure_search_attributes
from subchange.app.schedules import ensure_sweep_schedule
from subchange.settings import ConfigurationError, Settings, get_settings
from subchange.store.migrate import MigrationError, upgrade

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


async def set_up_temporal(settings: Settings) -> list[str]:
    """What was done in Temporal, one line each."""
    client = await connect(settings)
    done = []
    added = await ensure_search_attributes(client, settings.temporal_namespace)
    done.append(f"search attributes: registered {', '.join(added)}" if added
                else "search attributes: all registered already")
    schedule = await ensure_sweep_schedule(client, settings)
    done.append(f"the reconciliation sweep's schedule: {schedule or 'as configured already'} "
                f"(every {settings.change_sweep_every})")
    return done


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m subchange.app.migrate", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter
                            ).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        settings = get_settings()
        print(f"database: {upgrade(settings.database_url).describe()}")
        for line in asyncio.run(set_up_temporal(settings)):
            print(line)
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_CONFIG
    except MigrationError as error:
        print(f"migration failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except RPCError as error:
        print(f"Temporal at {settings.temporal_address}: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except RuntimeError as error:  # the client's "Failed client connect"
        print(f"TEMPORAL_ADDRESS: can't reach the Temporal server at "
              f"{settings.temporal_address}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
