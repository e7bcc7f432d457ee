"""Small pieces every infozoo environment shares: render-mode checks and text rendering."""

from __future__ import annotations

from typing import Any

RENDER_MODES = ["ansi", "human"]


def check_render_mode(render_mode: str | None, metadata: dict[str, Any]) -> str | None:
    """``render_mode`` if the environment supports it, else a ``ValueError`` naming the valid ones."""
    if render_mode not in (None, *metadata["render_modes"]):
        valid = ", ".join(repr(m) for m in metadata["render_modes"])
        raise ValueError(f"unknown render_mode {render_mode!r}; valid: None, {valid}")
    return render_mode


def emit(text: str, render_mode: str | None) -> str | None:
    """Render ``text``: returned for ``"ansi"``, printed (returning None) for ``"human"``."""
    if render_mode == "human":
        print(text)
        return None
    return text


def check_step(agents: list[str], actions: dict[str, Any]) -> None:
    """A parallel ``step`` needs a live episode and an action for every live agent."""
    if not agents:
        raise RuntimeError("step() called on a finished episode; call reset() first")
    missing = [a for a in agents if a not in actions]
    if missing:
        raise ValueError(f"missing actions for {', '.join(missing)}")
