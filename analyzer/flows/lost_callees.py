"""Calls whose answer was lost, named after the service that answers them elsewhere.

A client span whose callee's span was lost (sampled away at the callee, dropped by a collector)
names its callee only by what the client recorded: ``peer.service`` when set, otherwise the
address it called (``127.0.0.1:8006``, ``notification.shop.svc:80``), and its operation only by
the path it called. Elsewhere in the landscape the same client calls to the same address are
answered by the callee's own spans, which name the service and its operation. So each partition
counts who answered which (address, client operation) (:func:`count_answers`), the counts of
all partitions are summed (:func:`sum_answers`), the landscape keeps the answers one service
alone gives (:func:`decide_answers`), and steps are named after
them before they are marked (:func:`name_lost_callees`): a lost answer leaves the step as it was,
rather than adding a step ``127.0.0.1 POST /notifications`` to the flow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from orchscan.analyzer.columnar.grouping import group_codes

#: What identifies a call from the client's side: where it went and what it asked for.
KEYS = ["address", "client_key"]
_ANSWER = ["callee", "operation", "route"]


def count_answers(calls: pd.DataFrame) -> pd.DataFrame:
    """Per (address, client operation, callee, operation, route) of answered calls: how many."""
    answered = calls.loc[(calls["callee_row"] >= 0) & calls["address"].notna(), [*KEYS, *_ANSWER]]
    code, counted = group_codes(answered, [*KEYS, *_ANSWER], dropna=False)
    counted["calls"] = np.bincount(code, minlength=len(counted)).astype(np.int64)
    return counted


def sum_answers(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Answers of several partitions counted together, nothing decided yet: partials of any
    grouping of partitions sum to the same counts."""
    columns = [*KEYS, *_ANSWER]
    frame = pd.concat(parts, ignore_index=True).groupby(columns, sort=True, dropna=False)["calls"].sum()
    return frame.reset_index()


def decide_answers(counted: pd.DataFrame) -> pd.DataFrame:
    """From answers counted over the whole landscape (:func:`sum_answers`), the answer to each
    (address, client operation) that one service alone gives: its most frequent operation and
    route (by name on a tie)."""
    columns = [*KEYS, *_ANSWER]
    services = counted.groupby(KEYS, sort=False)["callee"].transform("nunique")
    frame = counted[services == 1].sort_values(
        [*KEYS, "calls", "operation"], ascending=[True, True, False, True]
    )
    return frame.drop_duplicates(KEYS)[columns].reset_index(drop=True)


def name_lost_callees(calls: pd.DataFrame, answers: pd.DataFrame) -> pd.DataFrame:
    """``calls`` with every unanswered call that ``answers`` knows named after its answer."""
    lost = (calls["callee_row"] < 0) & calls["address"].notna()
    if not lost.any() or answers.empty:
        return calls
    found = calls.loc[lost, KEYS].astype(object).merge(answers, on=KEYS, how="left")
    found.index = calls.index[lost]
    found = found[found["callee"].notna()]
    if found.empty:
        return calls
    named = calls.copy()
    for column in _ANSWER:
        named.loc[found.index, column] = found[column].to_numpy()
    named.loc[found.index, "step"] = found["callee"] + " " + found["operation"]
    return named
