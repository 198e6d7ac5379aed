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
        os.fchmod(fd, 0o666 & ~current_umask())
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
