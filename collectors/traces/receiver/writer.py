"""Received requests written as the OpenTelemetry Collector's file exporter writes protobuf.

Each message is preceded by its size as a 4-byte big-endian unsigned integer, the stream the
``otlp-proto`` reader reads. A file is written under a hidden ``.NAME.partial`` name and renamed
to ``NAME`` (``traces-<UTC time>-<pid>-<n>.pb``) once complete (rotated by size or age, or at
shutdown), so that a ``scan`` of the folder running meanwhile never reads a file being written.
Files a killed receiver left unfinished are completed at the next start: every frame in them
was flushed whole, and the reader skips a torn last frame.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

_PREFIX = struct.Struct(">I")
_PARTIAL = ".partial"


class WriterClosed(Exception):
    """The writer was closed (the receiver is shutting down)."""


class FramedWriter:
    """Thread-safe appends of size-prefixed messages to rotating files in one folder."""

    def __init__(
        self,
        folder: Path,
        *,
        max_file_bytes: int,
        max_file_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._folder = folder
        self._max_bytes = max_file_bytes
        self._max_age = max_file_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._partial: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._sequence = 0
        self._closed = False
        self.completed: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def recover(self) -> list[Path]:
        """Complete the files a previous receiver left unfinished; return their final paths."""
        recovered = []
        for partial in sorted(self._folder.glob(f".traces-*.pb{_PARTIAL}")):
            final = partial.with_name(partial.name[1 : -len(_PARTIAL)])
            if partial.stat().st_size:
                os.replace(partial, final)
                recovered.append(final)
            else:
                partial.unlink()
        return recovered

    def write(self, message: bytes) -> None:
        """Append one message as a frame, then rotate if the file reached its size limit."""
        frame = _PREFIX.pack(len(message)) + message
        with self._lock:
            if self._closed:
                raise WriterClosed("the receiver is shutting down")
            if self._file is None:
                self._open()
            assert self._file is not None
            self._file.write(frame)
            self._file.flush()  # whole frames reach the OS at once, so a crash tears at most one
            self._size += len(frame)
            if self._size >= self._max_bytes:
                self._finish()

    def rotate_if_old(self) -> None:
        """Complete the current file once it is older than the age limit."""
        with self._lock:
            if self._file is not None and self._clock() - self._opened_at >= self._max_age:
                self._finish()

    def close(self) -> None:
        """Complete the current file and refuse further writes."""
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._finish()

    def _open(self) -> None:
        self._sequence += 1
        stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"traces-{stamp}-{os.getpid()}-{self._sequence:04d}.pb"
        self._partial = self._folder / f".{name}{_PARTIAL}"
        self._file = self._partial.open("xb")
        self._opened_at = self._clock()
        self._size = 0

    def _finish(self) -> None:
        assert self._file is not None and self._partial is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = self._partial.with_name(self._partial.name[1 : -len(_PARTIAL)])
        os.replace(self._partial, final)
        self.completed.append(final)
        self._file = self._partial = None
