"""Throughput benchmarks (``infozoo bench perf``): environment steps per second for every registered
environment, and batched mechanism throughput (profiles per second).

Environment steps: a reset counts as part of the loop; actions are drawn from the action spaces
before timing, so the number measures the environment, not the sampler. One-round environments
(``auction-v0``) thus report reset+step pairs per second. Mechanism throughput: one batched call
on 100,000 profiles of ``additive-2x2-uniform``, best of several repeats.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

from infozoo.core.files import atomic_write_json, atomic_write_text

OPTIONAL = {"spread-po-v0": "mpe2"}


def env_steps_per_second(env_id: str, seconds: float = 2.0, seed: int = 0) -> float:
    """Steps per second of one environment copy, stepped in a single thread (torch's intra-op
    threads only add overhead at batch size 1; vectorised RL runs one copy per process)."""
    import torch

    import infozoo

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _env_steps(infozoo.make(env_id), seconds, seed)
    finally:
        torch.set_num_threads(threads)


def _env_steps(env: Any, seconds: float, seed: int) -> float:
    env.reset(seed=seed)
    pool = {a: [env.action_space(a).sample() for _ in range(64)] for a in env.possible_agents}
    for a in env.possible_agents:
        env.action_space(a).seed(seed)
    steps, k = 0, 0
    t0 = time.perf_counter()
    while True:
        if not env.agents:
            env.reset()
        env.step({a: pool[a][k % 64] for a in env.agents})
        steps += 1
        k += 1
        if steps % 64 == 0 and time.perf_counter() - t0 > seconds:
            break
    return steps / (time.perf_counter() - t0)


def mechanism_profiles_per_second(mechanism: str = "vcg", setting: str = "additive-2x2-uniform",
                                  n: int = 100_000, repeats: int = 5) -> float:
    import torch

    from infozoo.core.seeding import torch_generator
    from infozoo.registry import load_setting, make_mechanism

    s = load_setting(setting)
    mech = make_mechanism(mechanism, s)
    bids = s.sample(n, torch_generator(0))
    best = float("inf")
    with torch.no_grad():
        mech(bids)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            mech(bids)
            best = min(best, time.perf_counter() - t0)
    return n / best


def run_perf(out: Path | None = None, seconds: float = 2.0) -> dict[str, Any]:
    """Measure and print; write ``perf.json`` and ``perf.md`` into ``out`` when given."""
    from infozoo.bench.report import machine_description
    from infozoo.registry import list_envs

    result: dict[str, Any] = {"machine": machine_description(), "env_steps_per_second": {},
                              "mechanism_profiles_per_second": {}}
    for env_id in list_envs():
        dep = OPTIONAL.get(env_id)
        if dep and importlib.util.find_spec(dep) is None:
            continue
        result["env_steps_per_second"][env_id] = round(env_steps_per_second(env_id, seconds))
    result["mechanism_profiles_per_second"]["vcg additive-2x2-uniform (100k batch)"] = round(
        mechanism_profiles_per_second())
    print(json.dumps(result, indent=2))
    if out is not None:
        atomic_write_json(out / "perf.json", result)
        lines = ["## perf", "", f"Machine: {result['machine']}.", "", "| what | per second |", "| --- | --- |"]
        lines += [f"| {k} env steps | {v:,} |" for k, v in result["env_steps_per_second"].items()]
        lines += [f"| {k} profiles | {v:,} |" for k, v in result["mechanism_profiles_per_second"].items()]
        atomic_write_text(out / "perf.md", "\n".join(lines) + "\n")
    return result
