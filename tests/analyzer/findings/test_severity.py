"""A finding's severity follows how often its problem showed and how much evidence there is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchscan.analyzer.findings.severity import weigh
from orchscan.analyzer.results import SEVERITIES, EvidenceCounts


@pytest.mark.parametrize(
    ("affected", "cases", "explained", "severity", "why"),
    [
        (27, 27, 0, "high", "27 of 27 (100%): a pattern"),
        (18, 30, 0, "high", "a pattern (at least 50%)"),
        (10, 30, 0, "medium", "one level below the rule's high"),
        (2, 2, 0, "low", "too little evidence"),
        (4, 120, 0, "low", "outliers, the rest were handled"),
        (1, 120, 1, "info", "sampling holes explain them"),
        (5, 5, 5, "info", "every one lost spans"),
        (5, 40, 4, "low", "5 of 40, 1 of them not explained by lost spans (2%): too little evidence"),
        (30, 40, 10, "high", "30 of 40, 20 of them not explained by lost spans (50%): a pattern"),
    ],
)
def test_the_rule_of_method_md(affected: int, cases: int, explained: int, severity: str, why: str) -> None:
    weighed, sentence = weigh(EvidenceCounts(affected, cases, explained), severity="high")
    assert weighed == severity
    assert why in sentence


def test_a_medium_rule_never_becomes_high() -> None:
    assert weigh(EvidenceCounts(30, 30), severity="medium")[0] == "medium"
    assert weigh(EvidenceCounts(10, 30), severity="medium")[0] == "low"


@given(
    cases=st.integers(1, 500),
    data=st.data(),
    severity=st.sampled_from(SEVERITIES[1:]),
)
def test_more_affected_cases_are_never_less_severe(cases: int, data: st.DataObject, severity: str) -> None:
    fewer = data.draw(st.integers(1, cases))
    more = data.draw(st.integers(fewer, cases))
    rank = SEVERITIES.index
    assert rank(weigh(EvidenceCounts(more, cases), severity=severity)[0]) <= rank(
        weigh(EvidenceCounts(fewer, cases), severity=severity)[0]
    )
    assert rank(weigh(EvidenceCounts(more, cases), severity=severity)[0]) >= rank(severity)
