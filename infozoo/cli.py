"""The ``infozoo`` command line.

    infozoo list [--kind KIND]
    infozoo eval --setting S --mechanism M [--n N] [--seed K] [--regret-restarts R --regret-steps T]
                 [--baseline M2] [--json]
    infozoo train NAME --setting S [--profile quick|full] [--seed K] [--set KEY=VALUE ...] --out DIR [--force]
    infozoo bench TABLE|perf [--profile quick|full] [--db PATH] [--executor local|ray] [--workers W]
                             [--setting NAME ...] [--method NAME ...] [--max-seeds K] [--out DIR]
    infozoo report [--db PATH] [--out DIR] [--profile P]
    infozoo reproduce [--profile quick|full] [--db PATH] [--out DIR] [--executor local|ray]
    infozoo collect ENV --episodes N --out FILE [--seed K] [--policy random|scripted] [--env-kwargs JSON] [--force]
    infozoo certify DIR [--profiles N] [--restarts R] [--json]

Bad input exits with code 2 and a one-line message on stderr; everything a command can check (names,
paths, writability, the results database) is checked before any training or evaluation starts.
``--out`` never destroys data (see ``infozoo.core.checkpoint.check_destination``). Ctrl-C exits with
code 130 and a one-line message.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from infozoo import registry


class CLIError(Exception):
    """A user error the CLI reports in one line."""


def cmd_list(args: argparse.Namespace) -> None:
    kinds = [args.kind] if args.kind else ["env", "gym-env", "mechanism", "solver", "table"]
    for kind in kinds:
        print(f"{kind}s:")
        for name in registry.names(kind):
            e = registry.get(kind, name)
            print(f"  {name:<28} {e.domain:<12} {e.summary}")
    if not args.kind or args.kind == "settings":
        print("settings:")
        for domain in registry.names("settings"):
            for name in registry.setting_names(domain):
                print(f"  {name:<28} {domain}")


def cmd_eval(args: argparse.Namespace) -> None:
    setting = registry.load_setting(args.setting)
    if args.baseline is not None and setting.domain != "auction":
        raise CLIError("--baseline (a paired revenue difference) is for auction settings")
    registry.check_mechanism(args.mechanism, setting)
    if args.baseline is not None:
        registry.check_mechanism(args.baseline, setting)
    evaluate = registry.load("evaluator", setting.domain)
    kwargs: dict[str, Any] = {"n": args.n, "seed": args.seed}
    if args.regret_restarts is not None:
        kwargs["regret_restarts"] = args.regret_restarts
    if args.regret_steps is not None:
        kwargs["regret_steps"] = args.regret_steps
    if args.regret_profiles is not None:
        kwargs["regret_profiles"] = args.regret_profiles
    if args.baseline is not None:
        kwargs["baseline"] = args.baseline
    result = evaluate(setting, args.mechanism, **kwargs)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for k, v in result.items():
            print(f"{k:>32}: {v}")


def cmd_train(args: argparse.Namespace) -> None:
    from infozoo.core.checkpoint import check_destination

    domain = registry.get("solver", args.name).domain
    solver = registry.load("solver", args.name)
    # auctions and data markets have setting objects; Dec-POMDP solvers take the env id itself
    if domain in registry.names("settings"):
        setting = registry.load_setting(args.setting)
        if setting.domain != domain:
            raise CLIError(f"solver {args.name!r} trains on {domain} settings, and {args.setting!r} is a "
                           f"{setting.domain} setting; {domain} settings: {', '.join(registry.setting_names(domain))}")
    else:
        setting = args.setting
    config = with_overrides(solver.default_config(setting, profile=args.profile, seed=args.seed), args.set)
    check_destination(args.out, args.name, replace=args.force)  # before training, not after
    t0 = time.perf_counter()
    model = solver.fit(setting, config)
    wall = time.perf_counter() - t0
    model.save(args.out)
    print(json.dumps({"solver": args.name, "setting": getattr(setting, "name", args.setting),
                      "out": str(args.out), "train_time": wall, **getattr(model, "report", {})},
                     default=str))


def with_overrides(config: Any, pairs: list[str]) -> Any:
    """``config`` (a dataclass) with the fields named in ``pairs`` ("KEY=VALUE", VALUE read as
    JSON when it parses, else as a string) replaced; the new value must have the field's type."""
    if not pairs:
        return config
    if not dataclasses.is_dataclass(config):
        raise CLIError("--set: this solver's config is not a dataclass")
    names = [f.name for f in dataclasses.fields(config)]
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in names:
            raise CLIError(f"--set {pair!r}: expected KEY=VALUE with KEY one of: {', '.join(names)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        old = getattr(config, key)
        if isinstance(old, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(old, float) and type(value) is int:
            value = float(value)
        if type(value) is not type(old):
            raise CLIError(f"--set {key}: expected a {type(old).__name__} like {old!r}, got {raw!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise CLIError(f"--set {key}: expected a finite number, got {raw!r}")
        if isinstance(value, int | float) and not isinstance(value, bool) and old >= 0 > value:
            raise CLIError(f"--set {key}: expected a number >= 0 (the default is {old!r}), got {raw!r}")
        changes[key] = value
    return dataclasses.replace(config, **changes)


def _tables(name: str) -> list[Any]:
    if name == "all":
        return [registry.load("table", t) for t in registry.names("table")]
    return [registry.load("table", name)]


def cmd_bench(args: argparse.Namespace) -> None:
    if args.table == "perf":
        from infozoo.bench.perf import run_perf

        run_perf(out=Path(args.out) if args.out else None)
        return
    from infozoo.bench.report import check_report_destination, write_report
    from infozoo.bench.runner import run_table, task_filter
    from infozoo.bench.store import Store

    specs = _tables(args.table)
    filters = [task_filter(spec, args.profile, args.setting, args.method, args.max_seeds) for spec in specs]
    if args.out:
        check_report_destination(args.out, args.force)
    store = Store(args.db)  # checked (file, schema, writable) before any task runs
    failed = 0
    for spec, only in zip(specs, filters):
        summary = run_table(spec, args.profile, store, args.executor, args.workers, args.ray_address, only)
        print(f"{spec.name}: {summary.done} run, {summary.skipped} already in {store.path}, "
              f"{len(summary.failed)} failed")
        for task, err in summary.failed:
            print(f"  FAILED {task.method} on {task.setting} (seed {task.seed}):\n{err}", file=sys.stderr)
        failed += len(summary.failed)
    if args.out:
        for path in write_report(_tables(args.table), store, args.out, args.profile, force=args.force):
            print(f"wrote {path}")
    if failed:
        raise CLIError(f"{failed} benchmark task(s) failed (see above); rerun to retry only those")


def cmd_report(args: argparse.Namespace) -> None:
    from infozoo.bench.report import check_report_destination, write_report
    from infozoo.bench.store import Store

    check_report_destination(args.out, args.force)
    store = Store(args.db, write=False)
    for path in write_report(_tables("all"), store, args.out, args.profile, force=args.force):
        print(f"wrote {path}")


def cmd_reproduce(args: argparse.Namespace) -> None:
    args.table, args.setting, args.method, args.max_seeds = "all", [], [], None
    cmd_bench(args)
    from infozoo.bench.perf import run_perf

    run_perf(out=Path(args.out))


def cmd_collect(args: argparse.Namespace) -> None:
    from infozoo.core.files import check_writable_dir
    from infozoo.envs.decpomdp.histories import collect

    registry.get("env", args.env.removeprefix(f"{registry.NAMESPACE}/"))
    out = Path(args.out)
    for path in (out, out.with_name(out.name + ".json")):
        if path.is_dir() or (path.exists() and not args.force):
            raise CLIError(f"{str(path)!r} already exists; choose another --out (or --force to overwrite a "
                           "dataset file)" if not path.is_dir() else f"--out {str(path)!r} is a folder, not a file")
    check_writable_dir(out.parent, "output folder")
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as err:
        raise CLIError(f"--env-kwargs must be a JSON object, e.g. '{{\"obs_noise\": 0}}': {err}") from None
    if not isinstance(env_kwargs, dict):
        raise CLIError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    data = collect(args.env, args.episodes, args.policy, seed=args.seed, env_kwargs=env_kwargs)
    data.save(args.out)
    print(json.dumps({"env": args.env, "episodes": len(data), "out": str(args.out),
                      "histories": list(data.histories.shape), "states": list(data.states.shape)}))


def cmd_certify(args: argparse.Namespace) -> None:
    """Re-check a GemNet/RochetNet checkpoint's feasibility certificate from scratch."""
    from infozoo.solvers.gemnet.certify import recheck
    from infozoo.solvers.gemnet.train import load

    result = recheck(load(args.dir), profiles=args.profiles, restarts=args.restarts, seed=args.seed)
    print(json.dumps(result, default=str) if args.json else json.dumps(result, indent=2, default=str))


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default, except where there is nothing to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        nothing = action.default is None or action.default is False or action.default == [] \
            or action.default == argparse.SUPPRESS
        if action.required or nothing or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a misspelled choice (command, --kind, --profile, ...)."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            valid = [str(c) for c in action.choices]
            close = difflib.get_close_matches(str(value), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint} (choose from {', '.join(valid)})")


def build_parser() -> argparse.ArgumentParser:
    from infozoo import __version__

    p = _Parser(prog="infozoo", description="Multi-agent problems with private information: environments, "
                "solvers, baselines, benchmarks.", formatter_class=_HelpFormatter)
    p.add_argument("--version", action="version", version=f"infozoo {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, helptext: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=helptext, description=helptext,
                              formatter_class=_HelpFormatter)

    s = command("list", "registered envs, settings, mechanisms, solvers, tables")
    s.add_argument("--kind", choices=["env", "gym-env", "mechanism", "solver", "table", "settings"],
                   help="list only this kind (default: every kind)")
    s.set_defaults(func=cmd_list)

    s = command("eval", "evaluate a mechanism on a setting (truthful reports)")
    s.add_argument("--setting", required=True, help="setting name or JSON file")
    s.add_argument("--mechanism", required=True, help="mechanism name, or SOLVER:CHECKPOINT_DIR")
    s.add_argument("--n", type=_positive, default=100_000, help="test profiles (discrete settings: exact)")
    s.add_argument("--seed", type=int, default=0, help="seed of the test profiles")
    s.add_argument("--regret-restarts", type=_positive, default=None, help="regret search restarts (default: "
                   "the evaluator's)")
    s.add_argument("--regret-steps", type=_positive, default=None, help="regret search steps (default: the "
                   "evaluator's)")
    s.add_argument("--regret-profiles", type=_positive, default=None, help="profiles the regret is searched on "
                   "(default: the evaluator's)")
    s.add_argument("--baseline", default=None, metavar="MECHANISM",
                   help="auctions: also report the paired revenue difference to this mechanism on the same "
                        "profiles (default: none)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_eval)

    s = command("train", "train a solver and save its checkpoint")
    s.add_argument("name", help="solver name (see 'infozoo list --kind solver')")
    s.add_argument("--setting", required=True, help="setting name or JSON file (Dec-POMDP solvers: an env id)")
    s.add_argument("--profile", choices=["quick", "full"], default="quick", help="the solver's default budget")
    s.add_argument("--seed", type=int, default=0, help="training seed")
    s.add_argument("--out", required=True, help="checkpoint folder: new, empty, or (with --force) a checkpoint "
                   "of this solver")
    s.add_argument("--force", action="store_true", help="replace an existing checkpoint of this solver at --out "
                   "(written beside it, swapped in atomically)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the solver's config (repeatable), e.g. --set menu_grid=12")
    s.set_defaults(func=cmd_train)

    for name, func, helptext in [("bench", cmd_bench, "run a benchmark table (or 'perf', or 'all')"),
                                 ("reproduce", cmd_reproduce, "run every table, write tables and plots")]:
        s = command(name, helptext)
        if name == "bench":
            s.add_argument("table", help="table name, 'all' or 'perf'")
        s.add_argument("--profile", choices=["quick", "full"], default="quick", help="budget of the tasks")
        s.add_argument("--db", default="results/infozoo.sqlite", help="results database (SQLite; created if "
                       "missing)")
        s.add_argument("--out", default="results" if name == "reproduce" else None,
                       help="write tables and plots here" + ("" if name == "reproduce" else " (default: none)"))
        s.add_argument("--force", action="store_true", help="overwrite a README.md in --out that infozoo did not "
                       "write")
        s.add_argument("--executor", choices=["local", "ray"], default="local", help="where tasks run")
        s.add_argument("--workers", type=_positive, default=1, help="tasks run at once")
        s.add_argument("--ray-address", default=None, help="address of a running Ray cluster (default: start "
                       "a local one)")
        if name == "bench":
            s.add_argument("--setting", action="append", default=[], metavar="NAME",
                           help="run only the tasks on this setting (repeatable; default: all)")
            s.add_argument("--method", action="append", default=[], metavar="NAME",
                           help="run only the tasks of this method (repeatable; default: all)")
            s.add_argument("--max-seeds", type=_positive, default=None, metavar="K",
                           help="run only seeds 0..K-1 of each method (default: all)")
        s.set_defaults(func=func)

    s = command("certify", "re-check a gemnet/rochetnet checkpoint's feasibility certificate")
    s.add_argument("dir", help="checkpoint folder written by 'infozoo train gemnet|rochetnet'")
    s.add_argument("--profiles", type=int, default=1_000_000, help="random profiles for the over-allocation check")
    s.add_argument("--restarts", type=int, default=2000, help="adversarial search restarts (0: skip)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random profiles and restarts")
    s.add_argument("--json", action="store_true", help="print one JSON line")
    s.set_defaults(func=cmd_certify)

    s = command("collect", "collect a Dec-POMDP dataset of (histories, true states)")
    s.add_argument("env", help="Dec-POMDP env id (sensor-grid-v0, dec-tiger-v0, linear-gaussian-v0, spread-po-v0)")
    s.add_argument("--episodes", type=_positive, required=True, help="episodes to collect")
    s.add_argument("--out", required=True, help="output .safetensors file (metadata also in FILE.json); must not "
                   "exist unless --force")
    s.add_argument("--force", action="store_true", help="overwrite an existing dataset file")
    s.add_argument("--seed", type=int, default=0, help="seed of the episodes")
    s.add_argument("--policy", choices=["random", "scripted"], default="random", help="who acts")
    s.add_argument("--env-kwargs", default="{}", help="env arguments as JSON, e.g. '{\"obs_noise\": 0}'")
    s.set_defaults(func=cmd_collect)

    s = command("report", "render tables and plots from the results database")
    s.add_argument("--db", default="results/infozoo.sqlite", help="results database (read only)")
    s.add_argument("--out", default="results", help="write <profile>/<table>.md|csv|png and README.md here")
    s.add_argument("--force", action="store_true", help="overwrite a README.md in --out that infozoo did not "
                   "write")
    s.add_argument("--profile", choices=["quick", "full"], default=None,
                   help="only this profile (default: every profile in the database, each separately)")
    s.set_defaults(func=cmd_report)
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("infozoo: interrupted; results and checkpoints written so far are kept (rerun to resume)",
              file=sys.stderr)
        return 130
    except (CLIError, ValueError, FileNotFoundError) as err:
        print(f"infozoo: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
