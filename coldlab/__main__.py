import sys

from coldlab.cli import main

if __name__ == "__main__":  # not when a spawned process (coldlab export's figure workers) imports it
    sys.exit(main())
