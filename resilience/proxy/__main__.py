"""``python -m resilience.proxy``: run the Toxiproxy-compatible server."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
