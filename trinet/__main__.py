"""``python -m trinet``: the same as the ``trinet`` console script."""

import sys

from trinet.cli import main

sys.exit(main())
