"""Running the user's code (importing a TARGET, calling its builder, its forward pass) at arm's length.

The user's code sees ``sys.argv`` as ``[TARGET]`` (a module that parses arguments at import must not read
archaudit's), writes what it prints to standard error (archaudit's standard output carries only its own report,
so ``--format json`` stays valid JSON), and whatever it raises, ``SystemExit`` and other ``BaseException``
subclasses included, becomes one archaudit error naming the TARGET, so the CLI answers with one line and exit 2.
``KeyboardInterrupt`` is left to propagate: it is how a person stops the tool (exit 130).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from .errors import ArchauditError


def folded(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (white space folded), at most ``limit`` characters and "..."."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as ``Type: message`` on one line, bounded in length."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) (it called sys.exit)"
    text = folded(exc, limit)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def user_code(what: str, error: type[ArchauditError], doing: str) -> Iterator[None]:
    """Run the body as user code: ``error(f"{what}: {doing} raised ...")`` for anything it raises."""
    saved = sys.argv
    sys.argv = [what]
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except (KeyboardInterrupt, ArchauditError):
        raise
    except BaseException as exc:  # noqa: BLE001 - user code: SystemExit and custom BaseExceptions included
        raise error(f"{what}: {doing} raised {one_line(exc)}") from None
    finally:
        sys.argv = saved
