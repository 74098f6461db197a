import sys

from coldlab.cli import main

sys.exit(main())
