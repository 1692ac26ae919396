"""The one place where exceptions become a message and an exit code.

A :class:`~gitxact.errors.GitxactError` is something a user caused or can act on: one
line (plus a hint) on stderr and its own exit code. Anything else is a bug in
gitxact: one line saying so, and the traceback kept in a log file rather than thrown
at the user (the pre-commit model).
"""

from __future__ import annotations

import os
import stat
import sys

from gitxact.errors import EXIT_FAILED, GitxactError, StateAccessError
from gitxact.util import console

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

#: Where crash logs go; the CLI points this at ``<common-dir>/gitxact/logs`` once it knows the repository.
log_dir: Path | None = None


def report(error: GitxactError) -> int:
    reason = f" [{error.reason}]" if error.reason else ""
    console.sink(f"gitxact: error{reason}: {error.message}")
    if error.hint:
        console.sink(f"hint: {error.hint}")
    return error.exit_code


def _private(folder: Path) -> bool:
    """A folder only this user can reach: a real directory (no symlink), ours, mode 0700 or tighter.

    Outside a repository the log goes to a per-user folder in the shared temp dir, which
    anyone could have made first (as a symlink, or world-writable) to read or plant logs.
    """
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def crash_log(exc: BaseException) -> Path | None:
    """Append *exc*'s traceback to the crash log; its path, or ``None`` where no private folder could hold it."""
    # Imported here, on the crash path only: every gx and gitxact call is spared them.
    import datetime
    import tempfile
    import traceback
    from pathlib import Path

    own = Path(tempfile.gettempdir()) / f"gitxact-{os.getuid()}"
    # A shared repository's logs folder is the group's (util/files): a traceback may hold
    # what only this user should read, so it goes to this user's own folder then.
    folder = log_dir if log_dir is not None and _private(log_dir) else own
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(folder):
            return None
        path = folder / "crash.log"
        stamp = datetime.datetime.now(tz=datetime.UTC).isoformat(timespec="seconds")
        text = "".join(traceback.format_exception(exc))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, f"--- {stamp} pid {os.getpid()} argv {sys.argv!r}\n{text}\n".encode())
        finally:
            os.close(fd)
    except OSError:
        return None
    return path


def guarded(body: Callable[[], int]) -> int:
    """Run *body* and turn whatever it raises into an exit code."""
    try:
        return body()
    except GitxactError as error:
        return report(error)
    except PermissionError as exc:
        # Not a bug but a folder this user may not use (most often gitxact's own, in a
        # repository shared without core.sharedRepository): say which, and why.
        return report(StateAccessError.of(str(exc.filename or "."), exc))
    except KeyboardInterrupt:
        console.sink("gitxact: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`gitxact status | head`): not an error worth a message.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except Exception as exc:  # noqa: BLE001 - this is the last line of defence by design
        path = crash_log(exc)
        console.sink(f"gitxact: internal error: {type(exc).__name__}: {exc}")
        if path is not None:
            console.sink(f"gitxact: the full traceback is in {path}; please report it")
        return EXIT_FAILED
