"""`python -m companion …`: the command line lives in companion.batch.cli."""
import sys

from .batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
