"""Solving PuLP linear and mixed-integer programs: HiGHS in-process (through highspy) by default,
CBC (bundled with PuLP 3; deprecated upstream) as the fallback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SOLVERS = ("highs", "cbc")


@dataclass(frozen=True)
class SolveResult:
    """What a solve did: the solver used, PuLP's status string ("Time limit" when a solver stopped
    early with a feasible but unproven solution) and the objective value."""

    solver: str
    status: str
    objective: float | None
    wall_time: float

    @property
    def optimal(self) -> bool:
        return self.status == "Optimal"


_banner_silenced = False


def silence_highs_banner() -> None:
    """highspy writes its copyright banner to the process's C-level stdout when the first HiGHS
    object is built, whatever ``output_flag`` says (it cannot be switched off on its own), which
    would corrupt the JSON that ``infozoo train`` prints on stdout. Build that first object with
    file descriptor 1 pointed at /dev/null; later ones print nothing."""
    global _banner_silenced
    if _banner_silenced:
        return
    import os
    import sys

    try:
        import highspy
    except ImportError:  # no HiGHS: PuLP's solver reports it and ``solve`` falls back to CBC
        return
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    _banner_silenced = True


def solver_for(name: str, time_limit: float | None = None, msg: bool = False) -> Any:
    import pulp

    if name == "highs":
        if not msg:
            silence_highs_banner()
        return pulp.HiGHS(msg=msg, timeLimit=time_limit)
    if name == "cbc":
        return pulp.PULP_CBC_CMD(msg=msg, timeLimit=time_limit)
    raise ValueError(f"unknown LP solver {name!r}; valid: {', '.join(SOLVERS)}")


def solve(problem: Any, solver: str = "highs", time_limit: float | None = None,
          fallback: bool = True) -> SolveResult:
    """Solve ``problem`` with ``solver``; on a solver error try CBC when ``fallback`` is set."""
    import time

    import pulp

    order = [solver] + ([s for s in SOLVERS if s != solver] if fallback else [])
    last_error: Exception | None = None
    for name in order:
        t0 = time.perf_counter()
        try:
            problem.solve(solver_for(name, time_limit))
        except pulp.PulpSolverError as err:  # solver missing or crashed: try the next one
            last_error = err
            continue
        status = pulp.LpStatus[problem.status]
        if status == "Optimal" and problem.sol_status != pulp.LpSolutionOptimal:
            # HiGHS stopped by its time limit reports "Optimal" with a merely feasible incumbent
            status = "Time limit"
        objective = pulp.value(problem.objective) if status == "Optimal" else None
        return SolveResult(name, status, objective, time.perf_counter() - t0)
    raise RuntimeError(f"no LP solver could run ({', '.join(order)}): {last_error}")
