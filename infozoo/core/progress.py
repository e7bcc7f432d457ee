"""Progress bars: tqdm everywhere, quiet when ``INFOZOO_PROGRESS=0`` (tests, CI logs)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any


def enabled() -> bool:
    return os.environ.get("INFOZOO_PROGRESS", "1") not in ("0", "false", "no")


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """``tqdm(iterable, **kwargs)``, disabled when progress output is switched off."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", not enabled())
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)
