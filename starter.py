"""Command line for people and scripts: load fixtures, quote, start and follow changes, and the
support updates. Run `python starter.py --help`."""

import os
import sys

from subchange.app.cli import main

if __name__ == "__main__":
    code = main()
    # The Temporal client's Rust threads can abort CPython's finalisation ("PyGILState_Release",
    # temporalio/sdk-python#300), turning a good exit into SIGABRT; leave without finalising.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
