"""Allow ``python -m orchscan``."""

from orchscan.entry import main

main()
