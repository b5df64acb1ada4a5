"""Opening an input: gzip recognised by content, decompressed within limits, damage turned into an end.

Decompression is where a small file can cost a lot: a gzip bomb inflates a thousandfold. Trace
exports compress 8-20 times (OTLP protobuf about 8, OTLP/JSON about 14, Jaeger JSON about 20 with
gzip -9), so a file may inflate to ``MAX_INFLATE_RATIO`` times its compressed size (after the first
``INFLATE_GRACE_BYTES``, which any file may use) and to ``MAX_DECOMPRESSED_BYTES`` at most. Past a
limit, or at damage in the compressed data (a cut, a corrupt block), the stream simply ends: the
readers keep what was decompressed before, and :func:`stream_end` says why it ended early.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from pathlib import Path
from typing import IO

from orchscan.collectors.model.records import Skipped

#: Largest decompressed size of one compressed input file.
MAX_DECOMPRESSED_BYTES = 64 << 30
#: Largest ratio of decompressed to compressed bytes (gzip bombs reach about 1,000).
MAX_INFLATE_RATIO = 200
#: Decompressed bytes any file may produce before the ratio is checked.
INFLATE_GRACE_BYTES = 256 << 20

_BUFFER = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class _Inflated(io.RawIOBase):
    """A gzip member stream that ends, rather than raising, at damage or at a limit, and says which."""

    def __init__(self, compressed: IO[bytes], limit: int, ratio: int, grace: int) -> None:
        super().__init__()
        self._compressed = compressed
        self._inner = gzip.GzipFile(fileobj=compressed)
        self._limit, self._ratio, self._grace = limit, ratio, grace
        self.produced = 0
        #: Why the stream ended before the end of the compressed data, if it did.
        self.ended_early: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Decompress into ``buffer`` until it is full; 0 at the end, at damage, or past a limit.

        One decompression step at a time: a single large read would lose the bytes it had
        decompressed when it met the damage.
        """
        count = 0
        while count < len(buffer) and self.ended_early is None:
            try:
                data = self._inner.read1(len(buffer) - count)
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
                self.ended_early = (
                    f"compressed data damaged or cut short ({error}): everything decompressed "
                    "before the damage was read"
                )
                break
            if not data:
                break
            buffer[count : count + len(data)] = data
            count += len(data)
            self.produced += len(data)
            self._check_limits()
        return count

    def _check_limits(self) -> None:
        consumed = max(self._compressed.tell(), 1)
        if self.produced > self._limit:
            self.ended_early = (
                f"decompressed size exceeds the limit of {self._limit:,} bytes: "
                "the rest of the file is not read"
            )
        elif self.produced > self._grace and self.produced > self._ratio * consumed:
            self.ended_early = (
                f"decompresses to more than {self._ratio} times its compressed size (a decompression "
                f"bomb?) past the first {self._grace:,} bytes: the rest of the file is not read"
            )

    def close(self) -> None:
        """Close the decompressor and the file below it."""
        self._inner.close()
        self._compressed.close()
        super().close()


def open_input(
    path: Path,
    *,
    max_decompressed: int | None = None,
    max_ratio: int | None = None,
    grace: int | None = None,
) -> IO[bytes]:
    """Open a file for reading, transparently decompressing gzip (recognised by its magic) within limits.

    The limits default to ``MAX_DECOMPRESSED_BYTES``, ``MAX_INFLATE_RATIO`` and ``INFLATE_GRACE_BYTES``.
    """
    return open_stream(path.open("rb"), max_decompressed=max_decompressed, max_ratio=max_ratio, grace=grace)


def open_stream(
    raw: IO[bytes],
    *,
    max_decompressed: int | None = None,
    max_ratio: int | None = None,
    grace: int | None = None,
) -> IO[bytes]:
    """An input already open (a file fsspec opened at a URL, say), read as :func:`open_input` reads
    a path."""
    # Path.open and fsspec give buffered files with readinto, which IO[bytes] does not declare.
    buffered = io.BufferedReader(raw, buffer_size=_BUFFER)  # type: ignore[type-var]
    if buffered.peek(2)[:2] != _GZIP_MAGIC:
        return buffered
    inflated = _Inflated(
        buffered,
        MAX_DECOMPRESSED_BYTES if max_decompressed is None else max_decompressed,
        MAX_INFLATE_RATIO if max_ratio is None else max_ratio,
        INFLATE_GRACE_BYTES if grace is None else grace,
    )
    return io.BufferedReader(inflated, buffer_size=_BUFFER)


def stream_end(stream: IO[bytes], source: str) -> Skipped | None:
    """The skip that accounts for an input whose decompression ended early, or None."""
    inflated = getattr(stream, "raw", None)
    if not isinstance(inflated, _Inflated) or inflated.ended_early is None:
        return None
    return Skipped(source, f"byte {inflated.produced} (decompressed)", inflated.ended_early)


def plain_file(stream: IO[bytes]) -> tuple[str, str | None, int, int] | None:
    """Path, open handle (as :class:`FileExtent` names it), device and inode of a regular file
    that ``stream`` reads as stored, from its start; None for a decompressed, remote or otherwise
    other stream. Readers of such a file may let their workers read their parts of it themselves."""
    raw: object = stream
    while isinstance(raw, io.BufferedReader):
        raw = raw.raw
    if not isinstance(raw, io.FileIO) or not isinstance(raw.name, str):
        return None
    try:
        status = os.fstat(raw.fileno())
        at_start = stream.tell() == 0
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(status.st_mode) or not at_start:
        return None
    held = f"/proc/{os.getpid()}/fd/{raw.fileno()}" if os.path.isdir("/proc/self/fd") else None
    return os.path.abspath(raw.name), held, status.st_dev, status.st_ino
