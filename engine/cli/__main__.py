"""``python -m engine.cli``: the same as the rfexplorer-cli console script."""

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
