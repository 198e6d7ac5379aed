"""A run owns its output directory: a lock file taken before anything is written there.

The lock (``.hf-add.lock`` in the directory) names its holder: host, PID, start time and command line. It is
written in full to a private temporary file first and then hard-linked to its name, which fails if the name
exists: taking the lock is one atomic step, and no reader ever sees a half-written lock (on a file system
without hard links it is created with ``O_CREAT | O_EXCL`` and written in place, and readers wait briefly for
its content). A second run into the directory is refused at once, naming the holder. A lock whose process is
gone (same host: the PID is dead, belongs to a newer process, or the machine restarted since) is named as
stale and left in place: deleting it is the user's decision, never the next run's. A lock from another host
cannot be checked from here, and is named as such.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shlex
import socket
import sys
import time
import uuid

from hf_add.files import current_umask

LOCK_NAME = ".hf-add.lock"


class RunDirectoryLocked(FileExistsError):
    """The output directory holds another run's lock (live, stale, unreadable, or from another host)."""


@contextlib.contextmanager
def run_lock(directory: str | os.PathLike, command: list[str] | None = None):
    """Hold ``directory``'s lock for the block (the directory is created if needed); yields the lock's path.

    Raises ``RunDirectoryLocked`` (one line naming the holder and the fix) if the directory is locked. The
    lock is removed when the block ends, by return or exception; a directory this call created and the run
    left empty is removed too, so a run refused later (e.g. by a check) leaves nothing behind.
    """
    directory = os.path.abspath(os.fspath(directory))
    path = os.path.join(directory, LOCK_NAME)
    holder = _holder(command)
    for attempt in range(3):  # another run may remove the directory it created, and left empty, meanwhile
        created = _make_directories(directory)
        try:
            _acquire(path, holder)
            break
        except FileNotFoundError:
            _remove_empty(created)
            if attempt == 2:
                raise
        except BaseException:
            _remove_empty(created)
            raise
    try:
        yield path
    finally:
        _release(path, holder["token"])
        _remove_empty(created)


def describe_lock(path: str) -> str:
    """One line on the lock at ``path``: who holds it, or why it is stale, and what to do."""
    directory = os.path.dirname(path)
    holder = _read(path)
    if holder is None:
        return (
            f"{directory} has a lock that cannot be read ({path}: a run is writing it, or one crashed while "
            f"writing it): delete {path} if no run uses this directory"
        )
    who = f"PID {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"
    command = f" (`{holder['command']}`)" if holder.get("command") else ""
    if holder.get("host") != socket.gethostname():
        return (
            f"{directory} is locked by {who}{command}; that host's processes cannot be checked from here: wait "
            f"for that run to finish, or delete {path} if no run uses this directory"
        )
    gone = _why_gone(holder)
    if gone:
        return (
            f"{directory} has a stale lock from {who}{command}; {gone}: delete {path} if no run uses this "
            "directory"
        )
    return (
        f"{directory} is in use by another run: {who}{command}; wait for it to finish, or choose another "
        f"output directory (lock: {path})"
    )


def _holder(command: list[str] | None) -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(sys.argv if command is None else command),
        "boot_id": _boot_id(),
        "process_start": _process_start(os.getpid()),
        "token": uuid.uuid4().hex,  # tells this run's lock from a later one at the same path
    }


def _acquire(path: str, holder: dict) -> None:
    data = (json.dumps(holder, indent=2) + "\n").encode()
    temporary = f"{path}.{holder['token']}.tmp"
    _write_new(temporary, data)
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise RunDirectoryLocked(describe_lock(path)) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS):
            raise
        try:  # no hard links here: exclusive creation, written in place (readers wait for the content)
            _write_new(path, data)
        except FileExistsError:
            raise RunDirectoryLocked(describe_lock(path)) from None
    finally:
        os.unlink(temporary)


def _write_new(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~current_umask())
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(path)
        raise


def _release(path: str, token: str) -> None:
    held = _read(path, wait=0.0)
    if held is not None and held.get("token") == token:  # never remove a lock that someone else took since
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _read(path: str, wait: float = 1.0) -> dict | None:
    """The lock's content; None if it stays unreadable for ``wait`` seconds (or has gone)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(path, encoding="utf-8") as handle:
                holder = json.load(handle)
            if isinstance(holder, dict):
                return holder
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _why_gone(holder: dict) -> str | None:
    """Why the holder (on this host) no longer runs, or None if it may still run."""
    if holder.get("boot_id") and _boot_id() and holder["boot_id"] != _boot_id():
        return "this machine has restarted since"
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "that process is gone"
    except PermissionError:
        pass  # alive, another user's
    started = holder.get("process_start")
    if started is not None and _process_start(pid) not in (None, started):
        return f"that process is gone (PID {pid} now belongs to another process)"
    return None


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused PID apart."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _make_directories(directory: str) -> list[str]:
    """Create ``directory`` and missing parents; returns the ones created, deepest first."""
    missing = []
    path = directory
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        missing.append(path)
        path = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    return missing


def _remove_empty(created: list[str]) -> None:
    for path in created:
        try:
            os.rmdir(path)
        except OSError:
            return
