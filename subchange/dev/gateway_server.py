"""localstripe, the gateway of the embedded stack and the tests, with its state kept where the
caller says.

localstripe itself pickles its whole store to the fixed path /tmp/localstripe.pickle after every
request that writes, in every instance on the machine: the suite's, the benchmark's and the demo
stack's overwrote each other's state, and one stopped mid-write left a truncated file on which the
next `make demo` failed to start ("pickle data was truncated"). This runs the same server with the
state in `--state` (written to a temporary file, then renamed into place), or in memory only
without it, which also spares a pickling of the whole store per request.

localstripe also charges any amount, where Stripe refuses a PaymentIntent below the currency's
minimum charge (`amount_too_small`): a change of $0.45 went through locally and parked for good
in production (issue 22). This server refuses them as Stripe does, from Stripe's own table
(STRIPE_MINIMUM_CHARGES, kept apart from the service's gateway_minimums.json on purpose, so the
tests compare the two instead of one with itself).

    python -m subchange.dev.gateway_server --port 8420 [--state var/localstripe.pickle]
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

from localstripe import resources, server
from localstripe.errors import UserError

# Stripe's minimum charge amounts in minor units, by lower-case currency (Stripe's documentation,
# "Minimum and maximum charge amounts"), for the currencies a test or the demo may charge.
STRIPE_MINIMUM_CHARGES = {"usd": 50, "eur": 50, "jpy": 50, "gbp": 30, "aud": 50, "cad": 50}


def keep_state_in(path: Path | None) -> None:
    """Point localstripe's store at `path`; None keeps nothing on disk."""

    def load(store: resources.Store) -> None:
        if path is None or not path.exists():
            return
        try:
            with open(path, "rb") as handle:
                saved = pickle.load(handle)
        except Exception as error:  # noqa: BLE001 - a torn pickle raises almost anything
            print(f"{path}: unreadable ({error}); starting with an empty gateway",
                  file=sys.stderr)
            return
        store.clear()
        store.update(saved)

    def dump(store: resources.Store) -> None:
        if path is None:
            return
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(partial, "wb") as handle:
            pickle.dump(store, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump


def refuse_amounts_below_the_minimum() -> None:
    """Create no PaymentIntent below the currency's minimum charge: a 400 `amount_too_small`
    invalid-request error, as Stripe answers."""
    create = resources.PaymentIntent.__init__

    def checked(self, amount=None, currency=None, **fields) -> None:
        minimum = STRIPE_MINIMUM_CHARGES.get(str(currency).lower())
        value = resources.try_convert_to_int(amount)
        if minimum is not None and isinstance(value, int) and 0 < value < minimum:
            raise UserError(400, f"Amount must be at least {minimum} {currency} in minor units",
                            {"code": "amount_too_small", "param": "amount"})
        create(self, amount=amount, currency=currency, **fields)

    resources.PaymentIntent.__init__ = checked


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m subchange.dev.gateway_server",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", type=Path, help="the file the gateway's state is kept in "
                                                   "(default: none, in memory only)")
    args = parser.parse_args()
    keep_state_in(args.state)
    refuse_amounts_below_the_minimum()
    if args.state is not None:
        args.state.parent.mkdir(parents=True, exist_ok=True)
        resources.store.try_load_from_disk()
    sys.argv = [sys.argv[0], "--port", str(args.port), "--from-scratch"]  # loaded above
    server.start()


if __name__ == "__main__":
    main()
