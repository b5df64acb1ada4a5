"""Exit statuses of the ``orchscan`` command and the error type that maps to "unusable input".

CI tells a crash from a finding by these: 1 only ever means "findings at the gate".
"""

from __future__ import annotations

#: The scan ran and nothing tripped the gate.
EXIT_OK = 0
#: ``scan``/``conform``: at least one active finding at or above ``--fail-on``.
EXIT_FINDINGS = 1
#: Usage error, bad configuration, an unusable output folder, or nothing readable in the inputs.
EXIT_INPUT = 2
#: A bug in orchscan: a short message names the file holding the traceback.
EXIT_INTERNAL = 3
#: Interrupted by Ctrl-C (SIGINT), as shells report it (128 + 2): the command's status, after
#: which the ``orchscan`` process ends by SIGINT itself (:mod:`orchscan.entry`).
EXIT_INTERRUPTED = 130
#: Stopped by SIGTERM (128 + 15); the previous report set is left as it was.
EXIT_TERMINATED = 143


class UnusableInput(Exception):
    """Input or usage the user must fix: reported in one line, exit status 2, no traceback."""
