"""Atomic file writes: a file is either its old content or its new content, never half."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def canonical_json(obj: Any) -> str:
    """``obj`` as one canonical JSON string: sorted keys, no spaces, no NaN (the form that is hashed)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_jsonable)


def content_hash(obj: Any, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``canonical_json(obj)``."""
    import hashlib

    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def nearest_existing(path: str | Path) -> Path:
    """``path`` itself if it exists, else its closest existing ancestor."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_dir(path: str | Path, what: str) -> None:
    """A ``ValueError`` unless files can be created in folder ``path`` (or, when it does not exist
    yet, in its closest existing ancestor). The check creates and removes a temporary folder, so
    it holds for read-only file systems and for root alike."""
    base = nearest_existing(path)
    if not base.is_dir():
        raise ValueError(f"{what} {str(path)!r}: {str(base)!r} is a file, not a folder")
    try:
        Path(tempfile.mkdtemp(dir=base, prefix=".infozoo-probe-")).rmdir()
    except OSError as err:
        raise ValueError(f"{what} {str(path)!r}: cannot write in {str(base)!r} ({err.strerror})") from None


_RENAME_EXCHANGE = 2


def exchange_dirs(a: Path, b: Path) -> bool:
    """Atomically swap the folders ``a`` and ``b`` (Linux ``renameat2(RENAME_EXCHANGE)``); False where
    the system cannot, and nothing is changed then."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0


def replace_dir(new: Path, dest: Path) -> None:
    """Put folder ``new`` at ``dest``. An existing ``dest`` is swapped out atomically where the system
    allows (else moved aside to a unique name first, so a crash leaves both folders on disk) and
    deleted only once ``new`` is in place. An existing empty ``dest`` keeps its inode (it may be the
    working directory): ``new``'s files are moved into it."""
    import shutil

    if not dest.exists():
        new.rename(dest)
        return
    if not any(dest.iterdir()):
        for entry in sorted(new.iterdir(), key=lambda p: p.name == "config.json"):  # config last
            os.replace(entry, dest / entry.name)
        new.rmdir()
        return
    if exchange_dirs(new, dest):
        shutil.rmtree(new)  # now holds the old content
        return
    old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
    old.rmdir()
    dest.rename(old)
    new.rename(dest)
    shutil.rmtree(old)
