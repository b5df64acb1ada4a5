"""Safe, unique names for things named after services: file names, Arazzo and Backstage names.

Service names come from span data and may hold anything: ``team/a``, ``team:a`` and ``team a``
all sanitise to ``team-a``; ``stLogin`` and ``stlogin`` are one file on macOS and Windows; a
name of a thousand characters is no file name at all. A name is used verbatim only when it is
already safe, short enough and collides with no other name of the set (case-folded where the
target is case-insensitive; of names differing only in case the all-lower-case one is kept).
Every other name is sanitised, shortened and given a suffix hashed from the original name, so
it stays the same from scan to scan whatever other names appear beside it, and two names never
share a result.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

#: Hex digits of the hash suffix a rewritten name carries.
SUFFIX_DIGITS = 8

# Device names Windows refuses as a file name, whatever the extension.
_WINDOWS_DEVICES = frozenset(
    ("con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)), *(f"lpt{n}" for n in range(1, 10)))
)


@dataclass(frozen=True)
class NameRules:
    """What names may look like where they are used.

    ``unsafe`` matches a run of characters that must be replaced; ``edges`` are characters a name
    must not begin or end with; ``max_length`` bounds the name (suffix included);
    ``fold_case`` says that names differing only in case collide; ``devices`` refuses names
    that are device names on Windows.
    """

    unsafe: re.Pattern[str]
    edges: str
    max_length: int
    fold_case: bool
    devices: bool = False


#: File names (the stem before ``.arazzo.yaml`` and the like): portable to every file system.
#: 100 characters leave room for the longest suffix and a folder within common path limits.
FILE_NAMES = NameRules(re.compile(r"[^A-Za-z0-9._-]+"), "._-", 100, fold_case=True, devices=True)

#: Names inside an Arazzo document (source descriptions): ``[A-Za-z0-9_-]+``, case-sensitive.
ARAZZO_NAMES = NameRules(re.compile(r"[^A-Za-z0-9_-]+"), "_-", 100, fold_case=False)


def unique_names(originals: Iterable[str], rules: NameRules) -> dict[str, str]:
    """Each distinct original name -> a safe name, unique within the set under ``rules``."""
    return unique_labels({name: name for name in originals}, rules)


def unique_labels(labels: Mapping[str, str], rules: NameRules) -> dict[str, str]:
    """Each key -> its label made safe, unique within the set under ``rules``.

    A label is kept verbatim when it is safe and no other key has the same one (case-folded
    where the rules say so, the all-lower-case label winning); otherwise it gets a suffix hashed
    from the key, which identifies the item (a spec's path, a service name).
    """
    keys = sorted(labels)
    fold: Callable[[str], str] = str.casefold if rules.fold_case else str
    clean = {key: _sanitise(labels[key], rules) for key in keys}
    verbatim = [k for k in keys if labels[k] and clean[k] == labels[k] and not _device(labels[k], rules)]
    folded = Counter(fold(labels[key]) for key in verbatim)
    exact = Counter(labels[key] for key in verbatim)
    # Of names that differ only in case, the all-lower-case one (if any) keeps its name: the
    # usual spelling of a service name stays the same when a differently spelled one appears.
    result = {
        key: labels[key]
        for key in verbatim
        if exact[labels[key]] == 1 and (folded[fold(labels[key])] == 1 or fold(labels[key]) == labels[key])
    }
    taken = {fold(name) for name in result.values()}
    for key in keys:
        if key in result:
            continue
        chosen, n = _hashed(clean[key], key, rules, ""), 1
        # Only a hash collision (or a label crafted to look hashed) gets here twice.
        while fold(chosen) in taken:
            n += 1
            chosen = _hashed(clean[key], key, rules, f"-{n}")
        taken.add(fold(chosen))
        result[key] = chosen
    return result


def _sanitise(name: str, rules: NameRules) -> str:
    cleaned = rules.unsafe.sub("-", name).strip(rules.edges)
    if len(cleaned) > rules.max_length:
        cleaned = cleaned[: rules.max_length].rstrip(rules.edges)
    return cleaned


def _device(name: str, rules: NameRules) -> bool:
    return rules.devices and name.split(".", 1)[0].casefold() in _WINDOWS_DEVICES


def _hashed(clean: str, key: str, rules: NameRules, tail: str) -> str:
    """``clean`` shortened to leave room for ``-<hash of key>`` and ``tail``."""
    suffix = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:SUFFIX_DIGITS] + tail
    stem = clean[: rules.max_length - len(suffix) - 1].rstrip(rules.edges)
    return f"{stem}-{suffix}" if stem else suffix
