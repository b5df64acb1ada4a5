"""The ``--fail-on`` gate: which active findings make a CI run fail.

One definition shared by the exit status, the terminal's account of what tripped the gate and
the reports that mark failures (JUnit), so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from orchscan.analyzer.results import SEVERITIES, Finding


@dataclass(frozen=True)
class Gate:
    """Fail on findings of ``severity`` or worse; ``None`` never fails.

    ``rules``, when given, limits the gate to those rules (``conform`` gates on drift only).
    """

    severity: str | None = None
    rules: frozenset[str] | None = None

    def trips(self, finding: Finding) -> bool:
        """Whether ``finding`` alone fails the gate."""
        if self.severity is None or (self.rules is not None and finding.rule not in self.rules):
            return False
        return SEVERITIES.index(finding.severity) <= SEVERITIES.index(self.severity)

    def tripped_by(self, findings: Sequence[Finding]) -> tuple[Finding, ...]:
        """The findings that fail the gate, in their given order."""
        return tuple(f for f in findings if self.trips(f))

    def describe(self) -> str:
        """The gate in words, for messages."""
        if self.severity is None:
            return "no gate"
        scope = f" among {', '.join(sorted(self.rules))} findings" if self.rules is not None else ""
        return f"{self.severity} or worse{scope}"


def gate_for(fail_on: str, rules: Collection[str] | None = None) -> Gate:
    """The gate of a ``--fail-on`` choice (a severity, or ``none``)."""
    return Gate(None if fail_on == "none" else fail_on, None if rules is None else frozenset(rules))
