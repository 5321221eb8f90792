"""`python -m poise`: the `poise` command without its console script."""

import sys

from poise.cli import main

sys.exit(main())
