"""The Dask engine: the scan's map side on a Dask cluster, with the same reduction as the local engine.

Workers read the inputs themselves (``inputs``), large files cut into runs of frames or lines
(``pieces``); each piece's spans are routed into partitions of whole traces and written to one
shuffle file in a folder every worker shares; each unit of partitions is reduced where Dask runs
it and its heavy records stay on that worker until the landscape's selection (``shuffle``). The
client (``engine``, ``cluster``) only plans, gathers partials and selected records, and reports.
"""
