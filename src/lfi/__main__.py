"""``python -m lfi``: the ``lfi`` command."""

import sys

from lfi.cli import main

if __name__ == "__main__":
    sys.exit(main())
