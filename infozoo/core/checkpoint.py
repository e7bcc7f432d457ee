"""Checkpoints: tensors in ``weights.safetensors``, everything else in ``config.json`` (and any
extra JSON documents, e.g. a certificate). No pickle is ever written or loaded.

A checkpoint folder is written to a temporary sibling and moved into place, so an existing
checkpoint is never left half-overwritten, and nothing but a checkpoint of the same kind is ever
replaced (``check_destination``): a folder with other files, or a checkpoint of another solver, is
refused before anything is moved.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from infozoo.core.files import atomic_write_json, check_writable_dir, replace_dir

WEIGHTS = "weights.safetensors"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete or corrupted."""


def check_destination(directory: str | Path, kind: str, replace: bool = True) -> str:
    """Where a ``kind`` checkpoint may be written, or a ``CheckpointError`` saying why not.

    Returns ``"new"`` (``directory`` does not exist), ``"empty"`` (an empty folder) or
    ``"replace"`` (a ``kind`` checkpoint: only with ``replace``). Refused always: a file, a folder
    with anything but a checkpoint's files (``weights.safetensors`` and JSON documents), a
    checkpoint of another kind, and replacing the working directory or a folder holding it.
    """
    directory = Path(os.path.abspath(directory))
    where = str(directory)
    if directory.is_file():
        raise CheckpointError(f"output {where!r} is a file, not a checkpoint folder")
    if not directory.exists():
        check_writable_dir(directory, "output folder")
        return "new"
    if not directory.is_dir():
        raise CheckpointError(f"output {where!r} is not a folder")
    entries = sorted(p.name for p in directory.iterdir())
    check_writable_dir(directory.parent if entries else directory, "output folder")
    if not entries:
        return "empty"
    foreign = [e for e in entries if not (e == WEIGHTS or e.endswith(".json")) or (directory / e).is_dir()]
    if foreign or CONFIG not in entries:
        shown = ", ".join((foreign or entries)[:5]) + (", ..." if len(foreign or entries) > 5 else "")
        raise CheckpointError(f"output folder {where!r} is not empty and is not an infozoo checkpoint "
                              f"(it holds {shown}); nothing was written: choose a new or empty folder")
    try:
        found = json.loads((directory / CONFIG).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        found = None
    if found != kind:
        what = f"a {found!r} checkpoint" if found else f"an unreadable {CONFIG}"
        raise CheckpointError(f"output folder {where!r} holds {what}, not a {kind!r} one; "
                              "nothing was written: choose a new or empty folder")
    if not replace:
        raise CheckpointError(f"output folder {where!r} already holds a {kind!r} checkpoint; pass --force to "
                              "replace it (the new one is written beside it and swapped in atomically)")
    cwd = Path.cwd().resolve()
    if cwd == directory.resolve() or directory.resolve() in cwd.parents:
        raise CheckpointError(f"cannot replace {where!r}: it is (or holds) the working directory; "
                              "run from another folder")
    return "replace"


def save_checkpoint(
    directory: str | Path,
    tensors: dict[str, Any],
    config: dict[str, Any],
    extra_json: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Save ``tensors`` (name -> torch tensor) and ``config`` (JSON-able) to ``directory``.

    ``config`` must contain ``"kind"`` (the registered solver name) so that ``load`` can check it
    is reading the right thing. ``extra_json`` maps file names (``certificate.json``) to documents.
    An existing checkpoint of the same kind is replaced (swapped atomically); anything else at
    ``directory`` is refused (``check_destination``), and the new checkpoint is then kept in a
    temporary sibling folder that the error names, so no work is lost either.
    """
    from safetensors.torch import save_file

    if "kind" not in config:
        raise ValueError("checkpoint config needs a 'kind' entry (the solver name)")
    directory = Path(os.path.abspath(directory))
    check_destination(directory, config["kind"])
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / WEIGHTS))
        atomic_write_json(tmp / CONFIG, config)
        for name, doc in (extra_json or {}).items():
            atomic_write_json(tmp / name, doc)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        check_destination(directory, config["kind"])  # again: the folder may have changed meanwhile
        replace_dir(tmp, directory)
    except CheckpointError as err:
        raise CheckpointError(f"{err} (the new checkpoint is kept in {str(tmp)!r})") from None
    return directory


def load_checkpoint(directory: str | Path, kind: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(tensors, config)`` from a checkpoint folder, with clear errors when it is bad."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint folder {str(directory)!r} does not exist")
    config = read_json(directory / CONFIG, "checkpoint config")
    if kind is not None and config.get("kind") != kind:
        raise CheckpointError(f"{str(directory)!r} holds a {config.get('kind')!r} checkpoint, "
                              f"not {kind!r}")
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"checkpoint {str(directory)!r} has no {WEIGHTS}")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint weights {str(weights)!r} are corrupted: {err}") from None
    return tensors, config


def read_json(path: str | Path, what: str = "file") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} is missing")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{what} {str(path)!r} is corrupted (not valid JSON): {err}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} {str(path)!r} must hold a JSON object")
    return data
