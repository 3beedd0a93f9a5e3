"""`python -m gateway` runs the rosettamq command."""

import sys

from gateway.cli import main

sys.exit(main())
