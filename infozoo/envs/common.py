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


# ---- agents' actions: checked, never coerced -------------------------------------------------------
# An action of the wrong type, shape or range raises a ValueError that names the agent and the expected
# form: 1.7 or "1" is not read as the discrete action 1, and NaN, 7 or -3 are not read as "buy" or not.


def _describe(x: Any) -> str:
    text = repr(x)
    return (text if len(text) <= 60 else text[:57] + "...") + f" ({type(x).__name__})"


def discrete_action(agent: str, x: Any, n: int, what: str = "action") -> int:
    """``x`` as an int in 0..n-1: a Python or numpy integer (or a 0-d integer array); floats, strings
    and booleans are refused rather than rounded."""
    import numpy as np

    if isinstance(x, np.ndarray) and x.shape == () and np.issubdtype(x.dtype, np.integer):
        x = x.item()
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer):
        raise ValueError(f"{what} of {agent} must be an integer in 0..{n - 1} (int or numpy integer), "
                         f"got {_describe(x)}")
    if not 0 <= x < n:
        raise ValueError(f"{what} of {agent} must be an integer in 0..{n - 1}, got {int(x)}")
    return int(x)


def box_action(agent: str, x: Any, shape: tuple[int, ...], what: str = "action", form: str = "") -> Any:
    """``x`` as a finite float64 array of ``shape``: numbers only (a list, tuple, array or scalar of
    ints or floats); strings, objects, NaN and infinities are refused."""
    import numpy as np

    form = form or f"an array of shape {shape} of finite numbers"
    try:
        arr = np.asarray(x)
    except ValueError:  # ragged nested lists
        raise ValueError(f"{what} of {agent} must be {form}, got {_describe(x)}") from None
    if arr.dtype.kind not in "iuf" or arr.shape != shape:
        got = f"shape {arr.shape}" if arr.dtype.kind in "iuf" else _describe(x)
        raise ValueError(f"{what} of {agent} must be {form}, got {got}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} of {agent} is NaN or infinite: {arr.tolist()}; it must be {form}")
    return arr


def binary_action(agent: str, x: Any, m: int, what: str = "action") -> Any:
    """``x`` as a 0/1 array of length ``m`` (bools, or numbers equal to 0 or 1)."""
    import numpy as np

    form = f"{m} zeros/ones"
    try:
        arr = np.asarray(x)
    except ValueError:
        raise ValueError(f"{what} of {agent} must be {form}, got {_describe(x)}") from None
    if arr.dtype.kind not in "biuf" or arr.shape != (m,):
        got = f"shape {arr.shape}" if arr.dtype.kind in "biuf" else _describe(x)
        raise ValueError(f"{what} of {agent} must be {form} (shape ({m},)), got {got}")
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{what} of {agent} must be {form}, got {arr.tolist()}")
    return arr.astype(np.float64)
