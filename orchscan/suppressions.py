"""Reading a suppression file: findings the team accepted, each with a reason and an optional expiry.

YAML or JSON (by suffix ``.json``), loaded with the safe loader and a size limit::

    suppressions:
      - fingerprint: 9c1f0e2d3b4a5968        # one finding (findings.json's "fingerprint")
        reason: Legacy checkout is retired in Q3; tracked in SHOP-123
        expires: 2025-09-30                   # optional: the last day the entry holds
      - rule: missing-trace-context           # every finding of a rule at one service
        service: legacy-billing
        reason: Third-party code, context cannot be propagated

Every problem is reported with the file and the entry's position; nothing is guessed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from orchscan.analyzer.results import Suppression
from orchscan.exits import UnusableInput
from orchscan.reports.rules import RULES
from orchscan.reports.untrusted import printable

#: A suppression file is a short hand-written list; anything larger is a mistake.
MAX_FILE_BYTES = 4 * 1024 * 1024

_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
_KEYS = {"fingerprint", "rule", "service", "reason", "expires"}


class SuppressionError(UnusableInput):
    """A suppression file that cannot be used as written."""


def load_suppressions(path: Path) -> tuple[Suppression, ...]:
    """The entries of a suppression file, in file order."""
    name = printable(str(path))
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise SuppressionError(f"{name}: cannot read suppression file: {error.strerror or error}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SuppressionError(f"{name}: suppression file larger than {MAX_FILE_BYTES // 1024 // 1024} MB")
    try:
        data = orjson.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as error:
        first = printable(str(error).splitlines()[0] if str(error) else type(error).__name__)
        raise SuppressionError(f"{name}: malformed suppression file: {first}") from None
    if data is None:
        return ()
    if not isinstance(data, dict) or set(data) - {"suppressions"}:
        raise SuppressionError(f"{name}: expected a mapping with one key, 'suppressions' (a list of entries)")
    entries = data.get("suppressions") or []
    if not isinstance(entries, list):
        raise SuppressionError(f"{name}: 'suppressions' must be a list of entries")
    return tuple(_entry(f"{name}: suppressions[{i}]", item) for i, item in enumerate(entries))


def _entry(origin: str, item: Any) -> Suppression:
    if not isinstance(item, dict):
        raise SuppressionError(
            f"{origin}: expected a mapping with a reason and a fingerprint or rule+service"
        )
    unknown = sorted(str(k) for k in set(item) - _KEYS)
    if unknown:
        shown = ", ".join(map(printable, unknown))
        raise SuppressionError(f"{origin}: unknown key(s) {shown}; known: {', '.join(sorted(_KEYS))}")
    reason = _text(origin, item, "reason")
    if reason is None:
        raise SuppressionError(f"{origin}: a reason is required (why is this finding accepted?)")
    fingerprint, rule, service = (_text(origin, item, key) for key in ("fingerprint", "rule", "service"))
    if fingerprint is not None:
        if rule is not None or service is not None:
            raise SuppressionError(f"{origin}: give a fingerprint, or a rule and a service, not both")
        fingerprint = fingerprint.lower()
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise SuppressionError(
                f"{origin}: fingerprint must be 16 hex digits, got {printable(fingerprint)!r}"
            )
    elif rule is None or service is None:
        raise SuppressionError(f"{origin}: needs a fingerprint, or both a rule and a service")
    elif rule not in RULES:
        raise SuppressionError(f"{origin}: unknown rule {printable(rule)!r}; known: {', '.join(RULES)}")
    return Suppression(
        reason=reason,
        origin=origin,
        fingerprint=fingerprint,
        rule=rule,
        service=service,
        expires=_date(origin, item.get("expires")),
    )


def _text(origin: str, item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SuppressionError(f"{origin}: {key} must be a non-empty string")
    return value.strip()


def _date(origin: str, value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise SuppressionError(f"{origin}: expires must be a date (YYYY-MM-DD), got {printable(str(value))!r}")


def today(source_date_epoch: str | None) -> date:
    """The day expiry is judged on: ``SOURCE_DATE_EPOCH``'s when set (reproducible runs), else today (UTC)."""
    if source_date_epoch and source_date_epoch.strip().isdigit():
        return datetime.fromtimestamp(int(source_date_epoch), UTC).date()
    return datetime.now(UTC).date()
