"""Benchmark runner: table specs, tasks, executors (local process pool or Ray).

A *table* (registered under kind ``table``) is a ``TableSpec``: for a profile (``quick`` or
``full``) it lists ``Task``s, names the function that runs one task (``"module:function"``,
importable in a worker process, returning a dict of metrics) and renders the stored records into
``Table``s (and optionally plots). The runner skips tasks whose key is already in the store, runs
the rest through the executor and writes each result as soon as it arrives, so an interrupted
sweep resumes where it stopped. A task's key identifies its setting by content
(``infozoo.registry.setting_id``), not by name. Ctrl-C stops the workers quietly; what was written
stays.
"""

from __future__ import annotations

import math
import os
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infozoo.bench.store import Record, Store, task_key
from infozoo.core.progress import progress

PROFILES = ("quick", "full")
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Task:
    """One benchmark run: a method on a setting under a seed, with extra ``params``."""

    table: str
    setting: str
    method: str
    seed: int = 0
    profile: str = "quick"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def setting_id(self) -> str:
        """The content id of the built-in setting named ``setting`` ('' if it names none)."""
        from infozoo.registry import named_setting_id

        return named_setting_id(self.setting)

    @property
    def key(self) -> str:
        return task_key(asdict(self), self.setting_id)


@dataclass
class Table:
    """A rendered table: title, header, rows of strings, and notes printed under it."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TableSpec:
    """What a benchmark table runs and how it is shown."""

    name: str
    tasks: Callable[[str], list[Task]]
    run: str  # "module:function", Task -> dict of metrics
    render: Callable[[list[Record]], list[Table]]
    plots: Callable[[list[Record], Path], list[Path]] | None = None
    description: str = ""


@dataclass
class RunSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[Task, str]] = field(default_factory=list)


def execute(run: str, task: Task, threads: int | None = None) -> tuple[dict[str, Any], float]:
    """Run one task (in whatever process this is) and time it."""
    from infozoo.registry import load_entry_point

    if threads:  # torch's intra-op threads: set now if torch is loaded, else when the task loads it
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    metrics = load_entry_point(run)(task)
    return metrics, time.perf_counter() - t0


def _safe_execute(run: str, task: Task, threads: int | None) -> tuple[dict[str, Any] | None, float, str]:
    try:
        metrics, wall = execute(run, task, threads)
        return metrics, wall, ""
    except Exception:  # reported by the parent, which keeps going with the other tasks
        return None, 0.0, traceback.format_exc(limit=8)


def task_filter(spec: TableSpec, profile: str, settings: Iterable[str] = (), methods: Iterable[str] = (),
                max_seeds: int | None = None) -> Callable[[Task], bool] | None:
    """Keep the tasks of ``spec`` on these settings, of these methods (empty: all) and with seed
    below ``max_seeds`` (None: all), e.g. one seed of the full profile's large settings on a leased
    GPU. Names the profile does not have are refused with the valid ones."""
    settings, methods = set(settings), set(methods)
    if not settings and not methods and max_seeds is None:
        return None
    tasks = spec.tasks(profile)
    for what, asked, valid in (("setting", settings, {t.setting for t in tasks}),
                               ("method", methods, {t.method for t in tasks})):
        if asked - valid:
            raise ValueError(f"table {spec.name!r} ({profile} profile) has no {what} "
                             f"{', '.join(sorted(asked - valid))}; valid: {', '.join(sorted(valid))}")
    if max_seeds is not None and max_seeds < 1:
        raise ValueError(f"max_seeds must be at least 1, got {max_seeds}")
    return lambda t: ((not settings or t.setting in settings) and (not methods or t.method in methods)
                      and (max_seeds is None or t.seed < max_seeds))


def run_table(spec: TableSpec, profile: str, store: Store, executor: str = "local",
              workers: int = 1, ray_address: str | None = None,
              only: Callable[[Task], bool] | None = None) -> RunSummary:
    """Run every task of ``spec`` for ``profile`` that the store does not have yet."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    tasks = [t for t in spec.tasks(profile) if only is None or only(t)]
    present = store.keys()
    todo = [t for t in tasks if t.key not in present]
    summary = RunSummary(skipped=len(tasks) - len(todo))
    if not todo:
        return summary
    threads = max(1, (os.cpu_count() or 1) // workers)
    bar = progress(total=len(todo), desc=f"bench {spec.name} ({profile})", leave=True)

    def record(task: Task, metrics: dict[str, Any] | None, wall: float, err: str) -> None:
        if metrics is None:
            summary.failed.append((task, err))
        else:
            store.put(task.key, task.table, task.setting, task.method, task.seed, task.profile,
                      task.params, metrics, wall, setting_id=task.setting_id)
            summary.done += 1
        bar.update(1)
        bar.set_postfix_str(f"{task.method} on {task.setting}")

    if executor == "ray":
        _run_ray(spec.run, todo, record, workers, ray_address)
    elif workers == 1:
        for task in todo:
            record(task, *_safe_execute(spec.run, task, None))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_ignore_sigint)
        try:
            futures = {pool.submit(_safe_execute, spec.run, t, threads): t for t in todo}
            for fut in as_completed(futures):
                record(futures[fut], *fut.result())
        except BaseException:  # Ctrl-C, a failed write: stop the workers now, not after their tasks
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            bar.close()
            raise
        pool.shutdown()
    bar.close()
    return summary


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the parent, which stops them (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_ray(run: str, todo: list[Task], record: Callable[..., None], workers: int,
             ray_address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("the ray executor needs ray: pip install 'infozoo[ray]'") from None
    started = False
    if not ray.is_initialized():
        if ray_address:
            ray.init(address=ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(_safe_execute)
        pending = {remote.remote(run, t, 1): t for t in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                record(pending.pop(ref), *ray.get(ref))
    finally:
        if started:
            ray.shutdown()


def train_solver(task: Task, setting: Any) -> tuple[Any, float, dict[str, Any]]:
    """Train the registered solver ``task.method`` on ``setting`` with the task's profile and seed,
    save its checkpoint under ``results/checkpoints`` and return (model, train time, extra fields)."""
    from infozoo.registry import load

    solver = load("solver", task.method)
    config = solver.default_config(setting, profile=task.profile, seed=task.seed)
    t0 = time.perf_counter()
    model = solver.fit(setting, config)
    train_time = time.perf_counter() - t0
    ckpt = Path("results") / "checkpoints" / f"{task.method}-{task.setting}-s{task.seed}-{task.profile}"
    model.save(ckpt)
    return model, train_time, {"checkpoint": str(ckpt), **getattr(model, "report", {})}


# ---- rendering helpers shared by the table specs ------------------------------------------------


def mean_std(xs: Iterable[float], digits: int = 4) -> str:
    """``mean ± std`` over seeds (just the mean for one seed; '—' for none)."""
    vals = [float(x) for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.mean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def group(records: list[Record], *keys: str) -> dict[tuple[Any, ...], list[Record]]:
    """Records grouped by attributes (``"setting"``, ``"method"``, ...), in first-seen order."""
    out: dict[tuple[Any, ...], list[Record]] = {}
    for r in records:
        out.setdefault(tuple(getattr(r, k) for k in keys), []).append(r)
    return out


def pivot(records: list[Record], cell: Callable[[list[Record]], str], title: str,
          rows: list[str] | None = None, cols: list[str] | None = None, row_key: str = "method",
          col_key: str = "setting", corner: str = "method") -> Table:
    """A table with one row per ``row_key`` value and one column per ``col_key`` value."""
    g = group(records, row_key, col_key)
    rows = rows or list(dict.fromkeys(getattr(r, row_key) for r in records))
    cols = cols or list(dict.fromkeys(getattr(r, col_key) for r in records))
    body = [[r] + [cell(g[(r, c)]) if (r, c) in g else "—" for c in cols] for r in rows
            if any((r, c) in g for c in cols)]
    return Table(title, [corner, *cols], body)
