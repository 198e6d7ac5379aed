"""The ``hf-add`` command line: one entry point that dispatches to one module per command.

The library's own commands live in ``hf_add.commands``; other programs join the command line through the
``hf_add.commands`` entry-point group (``[project.entry-points."hf_add.commands"]`` in their
pyproject.toml: ``name = "package.module"``, a module with ``HELP`` and ``main(argv)``), so this module
never names them. ``hf-add <command> --help`` documents each command.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from importlib.metadata import entry_points

# name -> module of hf_add.commands, in the order of `hf-add --help`
COMMANDS = {
    "make-dataset": "hf_add.commands.make_dataset",
    "train": "hf_add.commands.train",
    "evaluate": "hf_add.commands.evaluate",
    "embed": "hf_add.commands.embed",
    "convert-beats": "hf_add.commands.convert_beats",
    "push": "hf_add.commands.push",
}
ENTRY_POINT_GROUP = "hf_add.commands"

EXAMPLE = """example (offline):
  hf-add make-dataset --output_dir data/spoken --clips_per_word 20
  hf-add train --model_name_or_path ast-tiny --dataset_name audiofolder --data_dir data/spoken \\
      --split_column partition --validation_split validation --test_split test \\
      --loss add --eval_strategy epoch --output_dir runs/ast-add
  hf-add evaluate runs/ast-add/test --data_dir data/spoken --split_column partition --split test \\
      --heatmap runs/ast-add/geometry.png
"""


def command_modules() -> dict[str, str]:
    """Every command: the library's, then those registered under the entry-point group."""
    registered = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**COMMANDS, **{name: module for name, module in registered.items() if name not in COMMANDS}}


def usage() -> str:
    lines = [
        "usage: hf-add <command> [options]     (hf-add <command> --help for a command's options)",
        "",
        "Train and study audio classifiers with the Angular Distance Distribution (ADD) loss.",
        "",
        "commands:",
    ]
    for name, module in command_modules().items():
        lines.append(f"  {name:14s} {getattr(importlib.import_module(module), 'HELP', '')}")
    return "\n".join([*lines, "", EXAMPLE])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    modules = command_modules()
    if command not in modules:
        print(f"hf-add: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    importlib.import_module(modules[command]).main(rest)
    return 0


# What a user's input can cause: said in one line, not a traceback (HF_ADD_TRACEBACK=1 shows it).
USER_ERRORS = (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError)


def describe_os_error(error: OSError) -> str:
    """One line on a failure of the machine rather than of the input (full disk, read-only or forbidden
    directory, no network): what failed, where, and the fix."""
    path = error.filename
    place = os.path.dirname(os.path.abspath(path)) if path and not os.path.isdir(path) else path
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left on the device of {path} ({error.strerror}): free space there (df -h {place}) or "
            "write elsewhere; an interrupted run continues from its last complete checkpoint with "
            "--resume_from_checkpoint true"
        )
    if error.errno == errno.EROFS:
        return f"{path} is on a read-only file system: write to a directory on a writable disk (e.g. --output_dir)"
    if error.errno in (errno.EACCES, errno.EPERM) and path:
        return f"permission denied: {path}: write to a directory you own, or fix its permissions (ls -ld {place})"
    text = " ".join(str(error).split())
    return f"{text}: {path}" if path and path not in text else text


def user_message(error: Exception) -> str:
    """The error's own words: an error raised in a DataLoader worker (a stream's bad clip) reaches the training
    process as "Caught ValueError in DataLoader worker process 0. Original Traceback ...", whose last line is
    the message that was raised."""
    text = str(error)
    if "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if last.startswith(f"{type(error).__name__}: ") else last
    return text


def console_main() -> int:
    """The ``hf-add`` executable: ``main`` with a user's mistakes reported as one ``error:`` line (exit 2), a
    failure of the machine (disk, permissions, network) as one line (exit 1), and Ctrl-C as one line saying
    how to resume (exit 130). ``HF_ADD_TRACEBACK=1`` shows the traceback instead."""
    command = f"hf-add {sys.argv[1]}" if len(sys.argv) > 1 else "hf-add"
    try:
        return main()
    except USER_ERRORS as error:
        if os.environ.get("HF_ADD_TRACEBACK"):
            raise
        print(f"{command}: error: {user_message(error)}", file=sys.stderr)
        return 2
    except OSError as error:
        if os.environ.get("HF_ADD_TRACEBACK"):
            raise
        print(f"{command}: error: {describe_os_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:
        if os.environ.get("HF_ADD_TRACEBACK"):
            raise
        print(f"{command}: interrupted{f': {error}' if str(error) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(console_main())
