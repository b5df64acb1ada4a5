"""Writing artefacts: one place that knows about files, stdout, partial writes and report sets.

A scan's reports refer to each other (findings.json names its Arazzo drafts, the HTML embeds
them), so the output folder is replaced as a whole: the new set is written into a staging
folder beside it and swapped in at the end, and a reader sees the old set or the new one, never
a mix. The swap happens under a lock on the parent folder, so concurrent scans into one folder
replace each other's sets whole instead of interleaving their files. A scan that is killed
leaves the old set and a staging folder, which the next scan into that folder removes; SIGINT
and SIGTERM wait while a staging folder is being created or removed, so an interrupted scan
never leaks one.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

if sys.platform != "win32":
    import fcntl

_STAGING = ".orchscan-"


class OutputError(Exception):
    """An output folder that cannot take the reports; found before any analysis runs."""


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
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class OutputSet:
    """A set of reports written into a staging folder and swapped in as a whole by :meth:`commit`.

    Made by :func:`prepare_output`, which removes the staging folder (the old set after a commit)
    when its block ends, however it ends: the old set stays as it was unless committed.
    """

    def __init__(self, target: Path, staging: Path, handle: int, owned: frozenset[str]) -> None:
        self.target = target
        self._staging = staging
        self._handle = handle
        self._owned = owned
        self._open = True

    def write(self, relative: str, content: str | bytes) -> None:
        """Write one report file of the set (``relative`` to the output folder)."""
        path = self._staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)

    def commit(self) -> None:
        """Swap the new set in for the old one; the old one is removed when the block ends."""
        with _locked(self.target.parent):
            _check_replaceable(self.target, self._owned)
            _remove_stale(self.target, keep=self._staging)
            if self.target.exists():
                _exchange(self._staging, self.target)
                # The staging path now holds the old set.
            else:
                os.rename(self._staging, self.target)

    def discard(self) -> None:
        """Remove the staging folder and release it."""
        if not self._open:
            return
        with _signals_held():
            self._open = False
            shutil.rmtree(self._staging, ignore_errors=True)
            os.close(self._handle)


@contextmanager
def prepare_output(out_dir: str | Path, owned: Collection[str]) -> Iterator[OutputSet]:
    """Check that ``out_dir`` can take a report set and make its staging folder beside it.

    ``owned`` names the top-level files and folders a scan writes: an existing folder holding
    anything else is refused, because the whole folder is replaced. Raises :class:`OutputError`
    naming the folder and the problem (a file in the way, no permission, a read-only disk)
    before anything is created.
    """
    names = frozenset(owned)
    target = Path(os.path.abspath(out_dir))
    if target.is_symlink():
        target = target.resolve()
    if target.parent == target:
        raise OutputError(f"{out_dir}: cannot replace the root folder; choose a folder for the reports")
    if target.exists() and not target.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    _check_replaceable(target, names)
    _create_parent(out_dir, target.parent)
    output: OutputSet | None = None
    try:
        # Held from mkdtemp until the set exists, so that an interrupted scan cannot leak the folder.
        with _signals_held():
            try:
                staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{_STAGING}", dir=target.parent))
            except OSError as error:
                raise OutputError(
                    f"{out_dir}: cannot write in {target.parent}: {error.strerror or error}"
                ) from None
            os.chmod(staging, 0o777 & ~_umask())
            handle = os.open(staging, os.O_RDONLY)
            # Held until the set is discarded: it tells other scans this staging folder is live.
            _lock(handle, blocking=True)
            output = OutputSet(target, staging, handle, names)
        yield output
    finally:
        if output is not None:
            output.discard()


def _create_parent(out_dir: str | Path, parent: Path) -> None:
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{out_dir}: {existing} is a file, not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{out_dir}: cannot create {parent}: {error.strerror or error}") from None


def _check_replaceable(target: Path, owned: frozenset[str]) -> None:
    if not target.is_dir():
        return
    try:
        foreign = sorted(entry for entry in os.listdir(target) if entry not in owned)
    except OSError as error:
        raise OutputError(f"{target}: cannot read the folder: {error.strerror or error}") from None
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise OutputError(
            f"{target}: holds files orchscan did not write ({shown}); the reports replace the whole "
            "folder, so choose a new or empty one"
        )


def _remove_stale(target: Path, *, keep: Path) -> None:
    """Remove staging folders of scans into ``target`` that died without cleaning up."""
    prefix = f".{target.name}{_STAGING}"
    for candidate in target.parent.iterdir():
        if not candidate.name.startswith(prefix) or candidate == keep or not candidate.is_dir():
            continue
        try:
            handle = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _lock(handle, blocking=False):
                shutil.rmtree(candidate, ignore_errors=True)
        finally:
            os.close(handle)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them.

    Python runs signal handlers in the main thread, whichever thread the kernel picked, so the
    handlers are swapped for ones that only take note (a signal mask would not cover the
    threads Arrow and NumPy start).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, note) for signum in held}
    try:
        yield
    finally:
        for held_signal, handler in previous.items():
            signal.signal(held_signal, handler)
        for noted in dict.fromkeys(pending):
            signal.raise_signal(noted)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    handle = os.open(folder, os.O_RDONLY)
    try:
        _lock(handle, blocking=True)
        yield
    finally:
        os.close(handle)


def _lock(handle: int, *, blocking: bool) -> bool:
    """An exclusive advisory lock on an open file or folder; False if another process holds it."""
    if sys.platform == "win32":
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> None:
    """Swap two folders: atomically where the kernel can (Linux renameat2), else in two renames."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = getattr(libc, "renameat2", None)
        if renameat2 is not None:
            result = renameat2(
                _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
            )
            if result == 0:
                return
            code = ctypes.get_errno()
            if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise OSError(code, os.strerror(code), str(second))
    # Between the two renames the folder is briefly absent; a reader still never sees a mix.
    aside = first.with_name(first.name + "-old")
    os.rename(second, aside)
    os.rename(first, second)
    os.rename(aside, first)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
