"""Atomic file output: a reader (or a crashed run) never sees a half-written result file."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs):
    """Open a temporary file beside ``path``; it replaces ``path`` only when the block completes."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        # mkstemp makes 0600 files; results are meant to be shared like any other written file
        os.fchmod(fd, usual_mode())
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def current_umask() -> int:
    """The process umask (reading it means setting it; it is set straight back)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def usual_mode(directory: bool = False) -> int:
    """The mode ``open()`` gives a new file (``mkdir()`` a directory): 0666 (0777) less the umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def give_usual_modes(path: str | os.PathLike) -> None:
    """Give ``path`` and everything under it the modes ``open()`` and ``mkdir()`` would have: for what
    ``mkdtemp`` (0700), ``mkstemp`` or a library (safetensors: 0600) made private. Execute bits are kept."""
    for root, _, files in os.walk(path) if os.path.isdir(path) else [("", [], [path])]:
        if root:
            os.chmod(root, usual_mode(directory=True))
        for name in files:
            file = os.path.join(root, name)
            if not os.path.islink(file):
                executable = os.stat(file).st_mode & 0o111
                os.chmod(file, usual_mode(directory=bool(executable)))


def write_json(data, path: str | os.PathLike) -> None:
    """Strict JSON (any parser reads it): NaN and inf, which mark undefined values, are written as null."""
    with atomic_write(path, encoding="utf-8") as handle:
        json.dump(finite_or_null(data), handle, indent=2, allow_nan=False)


def finite_or_null(value):
    """``value`` with every NaN or inf float replaced by None (JSON null), in nested dicts and lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value
