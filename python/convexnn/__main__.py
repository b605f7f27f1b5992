"""``python -m convexnn``: the command line (see :mod:`convexnn.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
