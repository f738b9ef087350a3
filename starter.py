"""Command line for people and scripts, the same as the `subchange` console script: load
fixtures, quote, start, list and follow changes, and the support updates. Run `python starter.py
--help`."""

from subchange.app.cli import run

if __name__ == "__main__":
    run()
