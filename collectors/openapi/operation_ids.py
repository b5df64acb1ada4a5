"""Operation ids for operations that have none: one generator, so every stage gives the same answer.

A spec without ``operationId``s and a service without any spec both need ids that Arazzo steps
can name (``[A-Za-z0-9_]`` only, so they fit inside a runtime expression). When the reader
synthesises one for a spec and the drafts infer one from traffic, the two must agree: a draft
written without the spec should still name the operation the spec will later describe.
"""

from __future__ import annotations

import re

_NOT_ID = re.compile(r"[^A-Za-z0-9]+")


def synthesise_operation_id(method: str, template: str) -> str:
    """``get_pets_petId`` for ``GET /pets/{petId}``; ``get`` for ``GET /``."""
    words = _NOT_ID.sub("_", template).strip("_")
    return f"{method.lower()}_{words}" if words else method.lower()


def claim_operation_id(candidate: str, taken: set[str]) -> str:
    """``candidate``, or the first of ``candidate_2``, ``candidate_3`` ... not in ``taken``; added to it.

    Two templates can give one id (``/a-b`` and ``/a_b``): the later one gets a suffix.
    """
    claimed, suffix = candidate, 2
    while claimed in taken:
        claimed, suffix = f"{candidate}_{suffix}", suffix + 1
    taken.add(claimed)
    return claimed
