"""`python -m app.cli` runs the `pubtrail` command."""

import sys

from app.cli import main

sys.exit(main())
