"""Allow ``python -m orchscan``."""

from orchscan.cli import main

main()
