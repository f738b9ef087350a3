"""Command line for people and scripts: load fixtures, quote, start and follow changes, and the
support updates. Run `python starter.py --help`."""

import sys

from subchange.cli import main

if __name__ == "__main__":
    sys.exit(main())
