"""``python -m curator.cli``."""

import sys

from curator.cli import main

sys.exit(main())
