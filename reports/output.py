"""Writing artefacts: one place that knows about files, stdout and partial writes."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def write_artifact(target: str | Path, content: str | bytes) -> None:
    """Write ``content`` to ``target`` atomically; ``-`` means standard output.

    Parent folders are created. The content goes to a temporary file beside the target first and
    is renamed into place, so a crash or a full disk never leaves a half-written report behind.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    if str(target) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        # mkstemp creates owner-only files; reports are meant to be shared like any other file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
