"""The scan's inputs as every worker sees them: listed on the client, opened by path or fsspec URL.

A local path is opened exactly as the local engine opens it (``open_input``), so the two engines
read the same bytes; a file at a URL (``s3://``, ``gs://``, ``file://`` ...) is opened by fsspec
and then read the same way (``open_stream``: gzip recognised by content, within the same limits).
The client names each file as the local engine would (the path as given, or the URL), but hands
workers an absolute path: their working folder is not the client's.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from orchscan.collectors.traces.ingest import TRACE_SUFFIXES, InputError, expand_paths
from orchscan.collectors.traces.inputs import open_input, open_stream

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BUFFER = 1 << 20
#: Gzip inputs are estimated at this many times their size (typical for trace exports).
GZIP_RATIO = 8


def is_url(text: str) -> bool:
    """True for ``scheme://...`` (storage for fsspec), false for a plain path."""
    return _URL.match(text) is not None


@dataclass(frozen=True)
class InputFile:
    """One input file: how the reports name it, where workers open it, and its size in bytes."""

    source: str
    location: str
    size: int

    @property
    def estimated_bytes(self) -> int:
        """Its size, uncompressed as far as the name tells (sizes partitions, never results)."""
        return self.size * GZIP_RATIO if self.source.endswith(".gz") else self.size


def list_inputs(paths: Iterable[str]) -> list[InputFile]:
    """Files named directly and trace-looking files below folders, in the local engine's order."""
    files: list[InputFile] = []
    for text in paths:
        if is_url(text):
            files += _listed(text)
            continue
        for path in expand_paths([text]):
            try:
                size = path.stat().st_size
            except OSError:
                size = 0  # the worker that reads it reports why
            files.append(InputFile(path.as_posix(), str(path.absolute()), size))
    return files


def _listed(url: str) -> list[InputFile]:
    """A URL's file, or the trace-looking files below it, sorted by path segments as folders are."""
    from fsspec.core import url_to_fs

    try:
        fs, root = url_to_fs(url)
    except (ImportError, ValueError) as error:  # an unknown protocol, or its package is missing
        raise InputError(f"{url}: {error}") from None
    if not fs.isdir(root):
        return [InputFile(url, url, _size(fs, root))]
    found: dict[str, Any] = fs.find(root, detail=True)
    names = sorted(
        (name for name in found if _trace_like(name.rsplit("/", 1)[-1])), key=lambda name: name.split("/")
    )
    return [
        InputFile(fs.unstrip_protocol(name), fs.unstrip_protocol(name), int(found[name].get("size") or 0))
        for name in names
    ]


def _trace_like(name: str) -> bool:
    return name.lower().endswith(TRACE_SUFFIXES) and not name.startswith(".")


def _size(fs: Any, path: str) -> int:
    try:
        return int(fs.size(path) or 0)
    except OSError:
        return 0


def open_file(location: str) -> IO[bytes]:
    """The file's bytes, decompressed when they are gzip, buffered for peeking."""
    if not is_url(location):
        return open_input(Path(location))
    return open_stream(open_raw(location))


def open_range(location: str, start: int, stop: int) -> IO[bytes]:
    """Bytes ``start`` to ``stop`` of an uncompressed file, as a stream of their own."""
    raw = open_raw(location)
    raw.seek(start)
    return io.BufferedReader(_Range(raw, stop - start), buffer_size=_BUFFER)


def open_raw(location: str) -> Any:
    """The file's bytes as stored, seekable (a run's reader and planning seek in them)."""
    if not is_url(location):
        return open(location, "rb")
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(location)
    return fs.open(path, "rb")


class _Range(io.RawIOBase):
    """At most ``length`` bytes of a file, from where it is positioned."""

    def __init__(self, raw: Any, length: int) -> None:
        super().__init__()
        self._raw = raw
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._left)
        if wanted <= 0:
            return 0
        data = self._raw.read(wanted)
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()
