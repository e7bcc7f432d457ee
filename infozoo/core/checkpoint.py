"""Checkpoints: tensors in ``weights.safetensors``, everything else in ``config.json`` (and any
extra JSON documents, e.g. a certificate). No pickle is ever written or loaded.

A checkpoint folder is written to a temporary sibling and renamed into place, so an existing
checkpoint is never left half-overwritten.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from infozoo.core.files import atomic_write_json

WEIGHTS = "weights.safetensors"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete or corrupted."""


def save_checkpoint(
    directory: str | Path,
    tensors: dict[str, Any],
    config: dict[str, Any],
    extra_json: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Save ``tensors`` (name -> torch tensor) and ``config`` (JSON-able) to ``directory``.

    ``config`` must contain ``"kind"`` (the registered solver name) so that ``load`` can check it
    is reading the right thing. ``extra_json`` maps file names (``certificate.json``) to documents.
    """
    from safetensors.torch import save_file

    if "kind" not in config:
        raise ValueError("checkpoint config needs a 'kind' entry (the solver name)")
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / WEIGHTS))
        atomic_write_json(tmp / CONFIG, config)
        for name, doc in (extra_json or {}).items():
            atomic_write_json(tmp / name, doc)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
