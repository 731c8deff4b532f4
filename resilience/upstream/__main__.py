"""``python -m resilience.upstream``: see :mod:`resilience.upstream.cli`."""

import sys

from .cli import main

sys.exit(main(prog="python -m resilience.upstream"))
