"""Allow ``python -m orchscan``."""

from orchscan.entry import main

# Guarded: worker processes a local Dask cluster spawns import this module again.
if __name__ == "__main__":
    main()
