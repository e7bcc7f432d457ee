"""The one registry of infozoo: names -> lazy ``"module:attr"`` entry points.

Everything a user can name on the command line or in ``infozoo.make`` is registered here, by
*kind*:

- ``env``        PettingZoo environment ids (``auction-v0``); the entry point is a module that
                 exposes ``env`` (AEC), ``parallel_env`` and ``raw_env``, like PettingZoo's own.
                 Each id is also registered in PettingZoo's registry as ``infozoo/<id>``.
- ``gym-env``    single-agent Gymnasium environments (registered in Gymnasium as ``infozoo/<id>``).
- ``mechanism``  named mechanisms: a factory ``f(setting, **kwargs) -> mechanism``.
- ``solver``     trainable solvers: a module with ``Config``, ``default_config(setting, profile,
                 seed)``, ``fit(setting, config)`` and ``load(directory)``; the fitted object has
                 ``save(directory)``. ``"<solver>:<dir>"`` names a trained checkpoint wherever a
                 mechanism name is accepted.
- ``settings``   one per domain: a module with ``NAMED_SETTINGS`` (name -> setting factory) and
                 ``from_dict(d)`` (the JSON form).
- ``evaluator``  one per domain: ``evaluate(setting, mechanism, **budget) -> dict``.
- ``table``      benchmark tables: a ``TableSpec`` (see ``infozoo.bench.runner``).

Nothing is imported until it is used, so ``import infozoo`` stays light (no torch).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Kind = Literal["env", "gym-env", "mechanism", "solver", "settings", "evaluator", "table"]
KINDS: tuple[str, ...] = ("env", "gym-env", "mechanism", "solver", "settings", "evaluator", "table")
NAMESPACE = "infozoo"
_MODULE_KINDS = ("env", "solver", "settings")  # entry points that name a whole module


@dataclass(frozen=True)
class Entry:
    """A registered name: what kind it is, where it lives, which problem family it serves."""

    kind: str
    name: str
    entry_point: str
    domain: str = ""
    summary: str = ""


_ENTRIES: dict[tuple[str, str], Entry] = {}


def register(
    name: str,
    entry_point: str,
    *,
    kind: Kind = "env",
    domain: str = "",
    summary: str = "",
) -> Entry:
    """Register ``name`` of ``kind`` at ``entry_point`` (``"module"`` or ``"module:attr"``).

    Environments are also registered with PettingZoo (``infozoo/<name>``, parallel and AEC) and
    Gymnasium environments with Gymnasium, so their own ``make`` functions find them.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if kind not in _MODULE_KINDS and ":" not in entry_point:
        raise ValueError(f"entry point {entry_point!r} of a {kind} must have the form 'module:attr'")
    entry = Entry(kind, name, entry_point, domain, summary)
    _ENTRIES[(kind, name)] = entry
    if kind == "env":
        import pettingzoo

        pettingzoo.register("parallel", f"{NAMESPACE}/{name}", entry_point=f"{entry_point}:parallel_env")
        pettingzoo.register("aec", f"{NAMESPACE}/{name}", entry_point=f"{entry_point}:env")
    elif kind == "gym-env":
        import gymnasium

        gymnasium.register(id=f"{NAMESPACE}/{name}", entry_point=entry_point)
    return entry


def names(kind: Kind, domain: str | None = None) -> list[str]:
    """Registered names of ``kind`` (optionally only those of one ``domain``), sorted."""
    return sorted(e.name for (k, _), e in _ENTRIES.items() if k == kind and domain in (None, e.domain))


def get(kind: Kind, name: str) -> Entry:
    """The entry for ``name``; a ``ValueError`` naming the valid choices if there is none."""
    try:
        return _ENTRIES[(kind, name)]
    except KeyError:
        raise unknown_name(kind, name, names(kind)) from None


def unknown_name(what: str, name: Any, valid: list[str], extra: str = "") -> ValueError:
    """The ``ValueError`` for a name that is not one of ``valid``: the closest names first
    ("did you mean"), then every valid one."""
    close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return ValueError(f"unknown {what} {name!r}; {hint}valid {what} names: {', '.join(valid) or '(none)'}{extra}")


def load(kind: Kind, name: str) -> Any:
    """Import and return the object behind ``name`` (a module when the entry has no ``:attr``)."""
    return load_entry_point(get(kind, name).entry_point)


def load_entry_point(entry_point: str) -> Any:
    module_name, _, attr = entry_point.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def list_envs() -> list[str]:
    """The registered PettingZoo environment ids."""
    return names("env")


def make(env_id: str, api: str = "parallel", **kwargs: Any) -> Any:
    """Build environment ``env_id`` as a PettingZoo ``ParallelEnv`` (``api="parallel"``) or
    ``AECEnv`` (``api="aec"``). Unknown ids, apis and keyword arguments raise ``ValueError``."""
    if api not in ("parallel", "aec"):
        raise ValueError(f"unknown api {api!r}; valid: 'parallel', 'aec'")
    module = load("env", env_id.removeprefix(f"{NAMESPACE}/"))
    factory = module.parallel_env if api == "parallel" else module.env
    _check_kwargs(env_id, module.raw_env, kwargs)
    return factory(**kwargs)


def _check_kwargs(what: str, func: Any, kwargs: dict[str, Any]) -> None:
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        valid = ", ".join(p for p in params if p != "self") or "(none)"
        raise ValueError(f"{what}: unknown argument(s) {', '.join(unknown)}; valid: {valid}")


# ---- settings, mechanisms and solvers ------------------------------------------------------


def load_setting(spec: Any, domain: str | None = None) -> Any:
    """A setting from a registered name, a path to a JSON file, a dict, or a setting object.

    With ``domain`` (``"auction"``, ``"data-market"``) a setting of another domain is refused."""
    setting = _load_setting(spec)
    check_setting_name(setting)
    if domain is not None and setting.domain != domain:
        raise ValueError(f"expected a setting of the {domain} domain, got the {setting.domain} setting "
                         f"{getattr(setting, 'name', '') or spec!r}; valid {domain} settings: "
                         f"{', '.join(setting_names(domain))}")
    return setting


def _load_setting(spec: Any) -> Any:
    if hasattr(spec, "domain"):
        return spec
    if isinstance(spec, dict):
        return _setting_from_dict(spec, "the given dict")
    if not isinstance(spec, str | Path):
        raise ValueError(f"a setting must be a name, a JSON path or a dict, not {type(spec).__name__}")
    path = Path(spec)
    if str(spec).endswith(".json") or path.is_file():
        if not path.is_file():
            raise ValueError(f"setting file {str(path)!r} does not exist")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"setting file {str(path)!r} is not valid JSON: {err}") from None
        return _setting_from_dict(data, str(path))
    builtin = builtin_setting(str(spec))
    if builtin is not None:
        return builtin
    raise unknown_name("setting", spec, setting_names(), " (or a path to a JSON setting file)")


def setting_content(setting: Any) -> dict[str, Any]:
    """What a setting *is*: its JSON form without the ``name`` (a label, not part of the setting)."""
    return {k: v for k, v in setting.to_dict().items() if k != "name"}


def setting_id(setting: Any) -> str:
    """A setting's identity: the hash of its canonical JSON content (``setting_content``). The
    results store, the tables and the checkpoint check compare settings by it, never by name."""
    from infozoo.core.files import content_hash

    return content_hash(setting_content(setting))


def named_setting_id(name: str) -> str:
    """The content id of the built-in setting called ``name``; '' when no built-in has that name
    (a benchmark task may name something else, e.g. a Dec-POMDP configuration)."""
    builtin = builtin_setting(name)
    return setting_id(builtin) if builtin is not None else ""


def setting_label(setting: Any) -> str:
    """How a setting is shown: its name, or ``custom-<id>`` when it has none."""
    return getattr(setting, "name", "") or f"custom-{setting_id(setting)[:8]}"


def builtin_setting(name: str) -> Any | None:
    """The built-in setting called ``name`` (any domain), or None."""
    for domain in names("settings"):
        family = load("settings", domain)
        if name in family.NAMED_SETTINGS:
            return family.NAMED_SETTINGS[name]()
    return None


def check_setting_name(setting: Any) -> None:
    """A ``ValueError`` when ``setting`` carries the name of a built-in setting of other content
    (results and checkpoints would otherwise be filed under the built-in's name)."""
    name = getattr(setting, "name", "")
    builtin = builtin_setting(name) if name else None
    if builtin is not None and setting_id(builtin) != setting_id(setting):
        raise ValueError(f"setting named {name!r} differs from the built-in setting of that name "
                         f"(content id {setting_id(setting)} vs {setting_id(builtin)}); rename it or "
                         "drop its 'name' (settings are identified by content, the name is a label)")


def setting_names(domain: str | None = None) -> list[str]:
    """Every named setting (of one domain, or all)."""
    out: list[str] = []
    for d in names("settings"):
        if domain in (None, d):
            out.extend(load("settings", d).NAMED_SETTINGS)
    return out


def _setting_from_dict(data: Any, where: str) -> Any:
    if not isinstance(data, dict) or "domain" not in data:
        raise ValueError(f"setting in {where} must be a JSON object with a 'domain' key; "
                         f"valid domains: {', '.join(names('settings'))}")
    if (data["domain"]) not in names("settings"):
        raise ValueError(f"setting in {where}: unknown domain {data['domain']!r}; "
                         f"valid domains: {', '.join(names('settings'))}")
    return load("settings", data["domain"]).from_dict(data)


def make_mechanism(spec: Any, setting: Any, **kwargs: Any) -> Any:
    """Resolve a mechanism: an object is returned as it is; ``"vcg"`` builds the named mechanism
    for ``setting``; ``"gemnet:DIR"`` loads a trained solver checkpoint from ``DIR``."""
    if not isinstance(spec, str):
        return spec
    name, sep, path = spec.partition(":")
    check_mechanism(spec, setting)
    if sep:
        model = load("solver", name).load(path)
        trained = getattr(model, "setting", None)
        if hasattr(trained, "to_dict") and hasattr(setting, "to_dict") and setting_id(trained) != setting_id(setting):
            raise ValueError(f"checkpoint {path!r} was trained on setting {setting_label(trained)!r}, not on "
                             f"{setting_label(setting)!r} (content ids {setting_id(trained)} and "
                             f"{setting_id(setting)}); use it with its own setting")
        return model
    return load_entry_point(get("mechanism", name).entry_point)(setting, **kwargs)


def check_mechanism(spec: Any, setting: Any) -> None:
    """Check a mechanism spec without building it (cheap, so commands run it before any work):
    a registered name for the setting's domain, or ``SOLVER:DIR`` with an existing ``DIR``."""
    if not isinstance(spec, str):
        return
    name, sep, path = spec.partition(":")
    domain = getattr(setting, "domain", None)
    if sep:
        if ("solver", name) not in _ENTRIES:
            raise unknown_name("trainable mechanism", name, names("solver"), f" (in {spec!r})")
        if not Path(path).is_dir():
            raise ValueError(f"checkpoint folder {path!r} (in {spec!r}) does not exist")
        entry = get("solver", name)
    else:
        if ("mechanism", name) not in _ENTRIES:
            raise unknown_name("mechanism", name, names("mechanism", domain) if domain else names("mechanism"),
                               " (or SOLVER:CHECKPOINT_DIR for a trained one)")
        entry = get("mechanism", name)
    if domain is not None and entry.domain and entry.domain != domain:
        valid = ", ".join(names("mechanism", domain))
        raise ValueError(f"mechanism {name!r} is for {entry.domain} settings, not {domain}; "
                         f"valid for {domain}: {valid}")


# ---- what ships with infozoo ----------------------------------------------------------------
# One section per problem family; keep each family's lines together.

# auctions
register("auction", "infozoo.envs.auction.settings", kind="settings", domain="auction")
register("auction", "infozoo.envs.auction.metrics:evaluate", kind="evaluator", domain="auction")
register("auction-v0", "infozoo.envs.auction.auction_v0", domain="auction",
         summary="one-round sealed-bid auction; bidders report valuations to a mechanism")
register("vcg", "infozoo.baselines.auction.classic:vcg", kind="mechanism", domain="auction",
         summary="VCG: second price per item (additive) / Clarke pivot assignment (unit-demand)")
register("myerson", "infozoo.baselines.auction.classic:myerson", kind="mechanism",
         domain="auction", summary="item-wise Myerson: virtual-value allocation, optimal reserve")
register("bundle", "infozoo.baselines.auction.classic:bundle", kind="mechanism", domain="auction",
         summary="grand bundle, second price with the revenue-optimal reserve")
register("first-price", "infozoo.baselines.auction.classic:first_price", kind="mechanism",
         domain="auction", summary="first-price per item (not strategy-proof)")
register("lp-optimal", "infozoo.baselines.auction.lp_optimal:lp_optimal", kind="mechanism",
         domain="auction", summary="optimal DSIC mechanism of a discrete setting, by LP")
register("gemnet", "infozoo.solvers.gemnet.train", kind="solver", domain="auction",
         summary="GemNet: learned per-bidder menus, exactly SP, MILP price transform + certificate")
register("rochetnet", "infozoo.solvers.gemnet.rochetnet", kind="solver", domain="auction",
         summary="RochetNet: GemNet's single-bidder case, a learned menu of lotteries")
register("auction", "infozoo.bench.tables.auction:TABLE", kind="table", domain="auction",
         summary="revenue of auction mechanisms across settings")
register("sequential-price-v0", "infozoo.envs.sequential_price.sequential_price_v0", domain="auction",
         summary="sequential price market: a designer posts prices, visited bidders buy")
register("SequentialPriceDesigner-v0", "infozoo.envs.sequential_price.designer:SequentialPriceDesignerEnv",
         kind="gym-env", domain="auction", summary="the designer's problem of a sequential price mechanism")
register("spm-ppo", "infozoo.baselines.auction.spm_ppo", kind="solver", domain="auction",
         summary="sequential price mechanism with a PPO designer (SB3); SP by construction")
register("spm-dp", "infozoo.baselines.auction.spm_dp:spm_dp", kind="mechanism", domain="auction",
         summary="best sequential posted-price mechanism, by dynamic programming")
register("lottery-ama", "infozoo.baselines.auction.lottery_ama", kind="solver", domain="auction",
         summary="Lottery AMA: affine maximizer over a learned menu of lotteries; exactly SP")
register("amenunet", "infozoo.baselines.auction.amenunet", kind="solver", domain="auction",
         summary="AMenuNet-style AMA: menu, weights, boosts from a permutation-equivariant network")
register("regretnet", "infozoo.baselines.auction.regretnet", kind="solver", domain="auction",
         summary="RegretNet: allocation + payment networks, regret by augmented Lagrangian (approx. SP)")
register("vvca", "infozoo.baselines.auction.ama:vvca", kind="mechanism", domain="auction",
         summary="hand-set affine maximizer over deterministic allocations (unsold-item boosts)")

# data markets
register("data-market", "infozoo.envs.data_market.settings", kind="settings", domain="data-market")
register("data-market", "infozoo.envs.data_market.metrics:evaluate", kind="evaluator", domain="data-market")
register("data-market-v0", "infozoo.envs.data_market.data_market_v0", domain="data-market",
         summary="buyers report types, get experiments and prices, then act on their signals")
register("theory", "infozoo.baselines.data_market.theory:theory", kind="mechanism", domain="data-market",
         summary="exact data-market optimum: BBS menu (one buyer), virtual values (several buyers)")
register("posted-price", "infozoo.baselines.data_market.posted_price:posted_price", kind="mechanism",
         domain="data-market", summary="full information at the revenue-optimal posted price")
register("data-market-net", "infozoo.solvers.data_market_net.train", kind="solver", domain="data-market",
         summary="data-market net: menu of experiments (one buyer), RegretNet-style net (several)")
register("data-market", "infozoo.bench.tables.data_market:TABLE", kind="table", domain="data-market",
         summary="data-market revenue against the theory optima")

# Dec-POMDPs
register("sensor-grid-v0", "infozoo.envs.decpomdp.sensor_grid_v0", domain="decpomdp",
         summary="sensors on a grid scan moving prey; collectively observable (MACO sensor task)")
register("dec-tiger-v0", "infozoo.envs.decpomdp.dec_tiger_v0", domain="decpomdp",
         summary="the classic two-agent Dec-Tiger; not collectively observable")
register("linear-gaussian-v0", "infozoo.envs.decpomdp.linear_gaussian_v0", domain="decpomdp",
         summary="linear-Gaussian Dec-POMDP with exact Kalman posteriors; CO configurable")
register("spread-po-v0", "infozoo.envs.decpomdp.spread_po_v0", domain="decpomdp",
         summary="mpe2 simple_spread with a limited view radius (needs mpe2)")
register("diffusion", "infozoo.solvers.diffusion.train", kind="solver", domain="decpomdp",
         summary="per-agent conditional diffusion state reconstructor with the composite flow over agents "
                 "(setting = env id)")
register("decpomdp", "infozoo.bench.tables.decpomdp:TABLE", kind="table", domain="decpomdp",
         summary="state reconstruction MSE: exact Bayes floor vs history regression, per agent and joint")
register("decpomdp-ippo", "infozoo.bench.tables.decpomdp:IPPO_TABLE", kind="table", domain="decpomdp",
         summary="IPPO return with local vs oracle-state observations, against random and scripted policies")
