"""Writing files atomically: a reader (or an interrupted run) never sees a half-written file."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import IO, AnyStr

from .errors import ArchauditError


class OutputError(ArchauditError, OSError):
    """An output path cannot be written (the path and the reason are named)."""


def output_path(path: str | Path) -> Path:
    """Where writing ``path`` lands: a symbolic link is written through to its target (the link stays), and a
    path that exists must be a regular file (a directory or a device node is refused, never replaced)."""
    if str(path) == "":
        raise OutputError("--output '': the path is empty")
    given = Path(path)
    resolved = Path(os.path.realpath(given))
    try:
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        return resolved
    except OSError as exc:
        raise OutputError(f"{given}: cannot be written: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise OutputError(f"{given}: is {kind}; give a file path to write")
    return resolved


def _write_synced(fh: IO[AnyStr], data: AnyStr) -> None:
    fh.write(data)
    fh.flush()
    os.fsync(fh.fileno())


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    Returns ``path`` as given. Any failure (no such directory that can be made, no permission, a full disk)
    raises :class:`OutputError` naming ``path``, and leaves neither a partial file nor a temporary one.
    """
    given = Path(path)
    target = output_path(given)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"{given}: cannot be written: {exc.strerror or exc}") from None
    try:
        if isinstance(data, bytes):
            with os.fdopen(fd, "wb") as binary:
                _write_synced(binary, data)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as text:
                _write_synced(text, data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a report is an ordinary file
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{given}: cannot be written: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return given
