import os
import sys

from bench.run import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip finalisation: see starter.py (temporalio/sdk-python#300)
