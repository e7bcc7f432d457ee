"""GemNet training (registered solver ``gemnet``; ``rochetnet`` is the same code with n = 1).

Loss (per batch of fresh value profiles v ~ F, all bidders' menus from ``model.MenuNetwork``):

    u_i^k(v)  = <v_i, alpha_i^k(v_{-i})> - beta_i^k(v_{-i})                  (utility of element k)
    w_i^k(v)  = softmax_k(lambda_t * u_i^k(v) / (high - low))                (relaxed choice)
    rev(v)    = sum_i sum_k w_i^k beta_i^k                                    (relaxed revenue)
    x_ij(v)   = sum_k w_i^k alpha_ij^k                                        (relaxed allocation)
    g(v)      = E_{k_i ~ w_i} sum_j max(0, sum_i alpha_ij^{k_i} - 1)   (incompatibility; exact for
                n = 2, by the expected allocation x for n > 2: see ``incompatibility``)
                [+ g_eps(v), the near-best-set over-allocation, when ``choice_margin`` > 0:
                 see ``margin_incompatibility``]
    L         = -E[rev] + lambda_g E[g] + rho/2 E[g]^2                        (augmented Lagrangian)

lambda_t (the choice temperature) grows geometrically from ``temp_start`` to ``temp_end``
(RochetNet uses a fixed 1000 for U[0,1] values); the multiplier lambda_g and penalty rho follow
``infozoo.core.lagrangian.AugmentedLagrangian``. At test time the choice is the hard argmax.
Warm start. From random menus the penalised training settles in a grand-bundle-only menu (one
element used, revenue ~0.82 on 2x2, below item-wise Myerson's 0.833). So the menu MLPs are first
regressed onto the menus of an exactly SP, compatible mechanism (``distil``), then trained as
above at a small learning rate:
- ``warm_start="lottery-ama"`` (the default for continuous multi-bidder settings): a Lottery AMA
  (Curry, Sandholm & Dickerson) is trained first (~70 s on 2x2) and its induced menus are the
  targets: given b_{-i}, bidder i may buy lottery a's share a_i at (1/w_i)[max_a' S^{-i}(a') -
  S^{-i}(a)], S^{-i}(a) = sum_{j != i} w_j <b_j, a_j> + lambda(a) (``teacher_targets`` keeps the K
  most used lotteries). Any AMA's induced menus are compatible (every bidder's best element is
  the AMA's argmax), and GemNet's menus are strictly richer, so the AMA is a feasible point of
  GemNet's problem. On 2x2 the distilled menus keep 0.873 of the teacher's 0.874 but
  over-allocate on 0.6% of profiles (the teacher's boundaries coincide for both bidders, and the
  student's price errors open conflicts there); training with ``choice_margin`` then opens
  unsold bands at those boundaries (0.856 at margin 0.01, 0.853 at 0.02, before the transform).
  ``teacher_restarts`` R > 1 trains the teacher R times and keeps the best on validation
  profiles (``best_teacher``): GemNet inherits the teacher's seed-to-seed spread.
- ``warm_start="myerson"``: item-wise Myerson written as menus (every bundle at the sum of its
  items' threshold prices, plus a gap; ``myerson_targets``): 0.822-0.839 on 2x2; the learned menu
  for bidder 1 at b_2 = (1/2, 1/2) sells item 1 at ~0.66, item 2 at ~0.68 and the bundle at ~0.98,
  the shape GemNet's paper reports (0.622, 0.667, 0.942).
A learning rate of 1e-3 after the warm start loses most of the teacher's advantage (0.837 at
margin 0.02 from the Lottery AMA start; Adam's first steps move every weight by ~lr); 2e-4
decaying to 2e-5 keeps it (0.853).
Piecewise-constant menus (``menu_grid`` G > 0, the default for continuous settings with n m <= 10,
see ``MENU_GRID``): the menu MLPs read b_{-i} at the centre of its grid cell (``model.py``), the
warm start distils the teacher's menus at those centres, and by default nothing else is trained
(``steps=0``): the exclusion MILP of ``transform.py`` then raises prices until the exact per-cell
check passes. Penalty training after the warm start lowered the certified revenue (2x2, G=16:
0.851 -> 0.836 after 1000 steps at lr 2e-5); evaluating the teacher at a priority corner of the
others' cells or at their lower corner instead of the centre lowered it (2x2, G=16: 0.848 and 0.850;
2x3, G=8: 1.152 against 1.171). The grid may be uneven (``grid_breaks``, ``GRID_FLOOR``).
On a grid the distilled prices are then set exactly to the targets' on every cell by a price table
(``snap_prices``; the transform's price changes, a function of the cell of b_{-i} only, so SP is
kept): distillation leaves price errors of ~0.01 that open conflicts in menus compatible by
construction. Where the coarse cells make a distilled AMA a poor start (3x3 with 4 cells per
dimension: certified 1.2469, as the raise-only repair of the centre menus' conflicts costs 0.49),
the default warm start is the *grid Myerson* with one-bidder menus (``GRID_MYERSON``;
``myerson_targets`` with ``bounds`` and ``monopoly``): item thresholds rounded to the others'
cells with a priority rule, so that no product cell over-allocates by construction, plus, for
the first bidder, a size-priced one-bidder menu (``monopoly_prices``, Manelli-Vincent's for two
items) on the items where everyone else is below the reserve. It needs no MILP (the certificate
checks it exactly like any other menu) and certifies above item-wise Myerson on 2x3 (1.2802 vs
1.2494 on the same profiles), where the AMA route reached 1.2529 in 19.6 min. Measured on 3x3
with 4 cells per dimension (``grid_breaks`` [0.5, 2/3, 5/6], 2-core CPU, 200k profiles): the AMA
distilled at the priority corner of the cells and snapped 1.2887; the grid Myerson's 7 bundles
plus 57 snapped AMA elements, with only the AMA elements re-priced by the MILP, 1.5617 against
the grid Myerson's 1.5614 alone: the raise-only repair prices out what bundling the AMA adds.
With n = 1 there is nothing to over-allocate (g = 0) and this is RochetNet: a menu of K lotteries
trained by Adam, as in Duetting et al. After training, ``transform.transform`` changes prices
(only prices) so that menus are compatible everywhere, and ``certify.certify`` proves it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from infozoo.core.checkpoint import CheckpointError, load_checkpoint, read_json
from infozoo.core.lagrangian import AugmentedLagrangian
from infozoo.core.progress import progress
from infozoo.core.seeding import seed_everything, torch_generator
from infozoo.core.torch_utils import set_threads, soft_argmax
from infozoo.envs.auction.settings import AuctionSetting, from_dict
from infozoo.solvers.gemnet.model import (
    CERTIFICATE,
    GemNetMechanism,
    MenuNetwork,
    PriceGrid,
    cell_ends,
    check_breaks,
    grid_index,
    menu_cell_profiles,
)

KIND = "gemnet"
Targets = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # bids [B, n, m] -> alloc, prices
WARM_TEACHERS = ("lottery-ama", "amenunet")  # registered menu-based solvers a warm start may distil
# default menu grid (cells per value dimension) by n * m for continuous multi-bidder settings, chosen
# so that the G^(n m) product cells of the exact check stay at or below about three million on a CPU
# where MILP rounds repair a distilled AMA, and about 400 million (one check, 7.6 GB) for the grid Myerson
MENU_GRID = {4: 32, 6: 12, 9: 9, 10: 5}
# by n * m, where the default grid is not uniform: one cell [0, floor), the other G - 1 equal on
# [floor, 1] (``floor_breaks``; measured in default_config)
GRID_FLOOR = {6: 0.5, 9: 0.5, 10: 0.5}
# by n * m, where the default warm start is the grid Myerson with one-bidder menus (``myerson_targets``
# with ``monopoly``; additive values i.i.d. U[0, h] only), not a distilled Lottery AMA (measured in
# default_config)
GRID_MYERSON = (6, 9, 10)
# by n * m, where the failing cells' own boxes are not refined on the AMA start (own_depth 0; 4
# elsewhere, not measured; the grid Myerson defaults use 0, having no failing cells): measured in
# default_config
OWN_DEPTH = {4: 0, 6: 0}


def floor_breaks(cells: int, floor: float) -> tuple[float, ...]:
    """Inner break points of a menu grid with one cell [0, floor) and ``cells`` - 1 equal cells
    on [floor, 1] (fractions of each value range)."""
    return tuple(floor + (1 - floor) * k / (cells - 1) for k in range(cells - 1))


@dataclass
class Config:
    """Hyper-parameters of GemNet / RochetNet training and of the price transform."""

    menu_size: int = 100  # K, menu elements per bidder (plus the null element)
    hidden: tuple[int, ...] = (128, 128)  # hidden layer widths of each bidder's menu MLP (n > 1)
    activation: str = "relu"  # "relu" or "tanh" (both admit interval bounds)
    alloc_sharpness: float = 1.0  # logits are multiplied by this before sigmoid / softmax
    alloc_init: float = 0.0  # > 0: allocation-logit biases start at random +-alloc_init (n > 1)
    alloc_snap: float = 1e-9  # sigmoid allocations within this of 0 / 1 are exactly 0 / 1
    menu_grid: int = 0  # > 0: menus piecewise constant in b_{-i} on this many cells per dimension (n > 1)
    grid_breaks: tuple[float, ...] = ()  # menu grid's inner break points (fractions of the value range); (): uniform
    steps: int = 4000  # Adam steps, a fresh batch of profiles each step (0: the warm start only)
    batch: int = 1024  # profiles per step
    lr: float = 1e-3  # Adam learning rate at the start (RochetNet: 1e-3)
    lr_end: float = 1e-3  # learning rate at the last step (geometric decay from lr)
    temp_start: float = 100.0  # choice temperature lambda_t at step 0 (per unit value range)
    temp_end: float = 1000.0  # choice temperature at the last step (RochetNet: 1000)
    rho: float = 100.0  # augmented-Lagrangian penalty on incompatibility
    rho_growth: float = 1.0  # rho multiplier every rho_every steps
    rho_every: int = 1000  # steps between rho increases
    lam_every: int = 50  # steps between multiplier updates
    choice_margin: float = 0.0  # > 0: penalise over-allocation by elements within this gap (x range) of the best
    warm_start: str = "none"  # "myerson" or a menu-based solver (WARM_TEACHERS) to distil first (n > 1)
    teacher_dir: str = ""  # warm start from this saved teacher checkpoint instead of training one
    teacher_restarts: int = 1  # > 1: train the teacher this often (seeds seed + 1000 r), keep the best
    warm_steps: int = 1500  # distillation steps of the warm start
    warm_gap: float = 0.02  # the warm-start menus' threshold prices are raised by this (x range)
    warm_monopoly: bool = False  # "myerson" warm start on a grid: one-bidder menus where the rest are below reserve
    snap_prices: bool = True  # piecewise-constant menus, steps 0: prices set to the targets' on every cell
    transform: bool = True  # run the price transform + certificate after training
    grid: int = 8  # price-change grid: cells per value dimension (continuous settings)
    max_depth: int = 8  # adaptive grid: most splits of one certificate cell
    own_depth: int = 8  # piecewise-constant menus: most splits of one bidder's own box in a grid cell
    grid_batch: int = 4000  # piecewise-constant menus: failing cells per price-change MILP
    fallbacks: int = 1  # piecewise-constant menus: fallbacks of any allocation per candidate (transform.py)
    fallback_rounds: int = 8  # ... offered in this many first MILP rounds (later: smaller ones and null only)
    max_cells: int = 400_000  # adaptive grid: most certificate cells in total
    lookahead_split: bool = False  # adaptive grid: cut the dimension that helps most (True) or the widest
    max_change: float = 0.05  # largest price change |delta| per MILP round, times the largest value
    milp_rounds: int = 3  # transform rounds (MILP then re-certification)
    milp_time_limit: float = 300.0  # seconds per MILP; hitting it leaves the mechanism uncertified
    # (piecewise-constant menus: a timed-out MILP is discarded and its batch split, see transform.py)
    milp_max_binaries: int = 250_000  # refuse (uncertified) a MILP with more binaries (2x2 seed 1: 120k solved in 21 s)
    solver: str = "highs"  # "highs" (default) or "cbc"
    discrete_reprice: bool = True  # discrete settings: re-optimise all prices for revenue by MILP
    merge_tol: float = 1e-3  # discrete MILP: elements whose allocations agree to this are merged
    margin: float = 1e-6  # discrete MILP: strict preference margin, times the largest value
    verify_profiles: int = 100_000  # over-allocation check on random profiles inside fit
    threads: int = 1  # torch threads
    seed: int = 0  # seed of initialisation and sampling
    profile: str = "quick"  # the profile the defaults were chosen for
    kind: str = KIND  # registered solver name written to the checkpoint
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with the config


def default_config(setting: AuctionSetting, profile: str = "quick", seed: int = 0) -> Config:
    """Defaults that work per setting size (quick: minutes on a 2-core CPU; full: a GPU)."""
    if profile not in ("quick", "full"):
        raise ValueError(f"unknown profile {profile!r}; valid: quick, full")
    n, m = setting.bidders, setting.items
    full = profile == "full"
    if n == 1:
        return Config(menu_size=1000 if full else 200, steps=40_000 if full else 20_000, batch=1024,
                      lr=3e-3, lr_end=3e-5, temp_start=1000.0, temp_end=1000.0, seed=seed,
                      profile=profile, kind="rochetnet")
    if setting.discrete:
        return Config(menu_size=30, hidden=(64, 64), steps=2000, batch=512, alloc_sharpness=10.0, alloc_init=3.0,
                      temp_start=20.0, temp_end=200.0, rho=10.0, seed=seed, profile=profile)
    menu_grid = MENU_GRID.get(n * m, 0)
    if menu_grid:
        # piecewise-constant menus (see model.py), certified exactly per grid cell: the Lottery AMA
        # teacher's menus are distilled at the cell centres (steps=0: no penalty training after it;
        # on 2x2 with G=16, 1000 penalty steps at lr 2e-5 took the certified revenue from 0.851 to
        # 0.836), then the exclusion MILP raises prices until every cell passes. Measured on 2x2
        # (2-core CPU, seed 0, transform's 200k profiles): K=32 and 64x64 MLPs: G=16 certified 0.851 in
        # 108 s, G=32 0.859 in 312 s, G=40 0.858 in 479 s; K=64 and 128x128 MLPs, G=32: 0.862 in 345 s.
        # Unit-demand exclusion MILPs are harder (on unit-2x2, 4000-cell batches often ran past 60 s
        # while 500-1000-cell ones mostly solve in 1-6 s): smaller batches, and a short time limit,
        # after which a batch is split (transform.py) rather than the certificate refused.
        # own_depth 4 rather than 8 (same distilled menus, 2-core CPU): 2x3 certified 1.2245 in 178 s
        # against 1.2244 in 295 s (53k failing cells refine into 4.5M own boxes at depth 8); 2x2
        # the same 0.8644 in 145 s against 159 s.
        # 2x3 with the distilled Lottery AMA (before GRID_MYERSON): G = 12 with the lowest cell
        # [0, 0.3) and 11 cells of 0.064 above, 2,985,984 product cells. Measured (2-core CPU,
        # seed 0, certified revenue on 10^6 profiles unless said): uniform G = 8 1.2238 (5 min),
        # uniform G = 12 1.2480 (23.5 min), floor 0.3 (the default then) 1.2529 +- 0.0006,
        # 0.0035 +- 0.0005 above item-wise Myerson on the same profiles (18.6 min alone, 19.6 min in the
        # quick sweep; 28.8 min alone with own_depth 4 and no load tables). Spending the cells
        # near the top is not the rule: on G = 8 (transform's 200k profiles) floor 0.3 gave 1.2317,
        # uniform 1.2245, and sqrt spacing (breaks sqrt(k / G), denser towards 1) 1.2155.
        # 2x3 own_depth 0: refining the failing cells' own boxes (depth 4) certified none of the 593k
        # failing cells of the first check (it only tightens the MILP's raises), made 10.2M boxes and
        # took ~280 s of that check (another job on the second core); without it the same distilled
        # menus certified at 1.25300 against 1.25285 (transform's 200k profiles, 238 MILPs either way).
        # 2x2 and unit-2x2 own_depth 0: bit-identical checkpoints to depth 4, transform 106 s against
        # 126 s and 257 s against 287 s (2-core CPU; depth 0 the two runs side by side, depth 4 in the
        # quick sweep).
        # 2x3 and 3x3 (GRID_MYERSON): the grid Myerson with one-bidder menus, snapped, no MILP. Its
        # revenue is the grid's (Monte Carlo of the targets, 10^6 profiles): 2x3 G = 12 with [0, 0.5)
        # and 11 equal cells above 1.2810, floor 0.3 1.2789, G = 16 1.2814; 3x3 (floor 0.5, as the
        # reserve) G = 5 1.5820, G = 6 1.5880, G = 7 1.5914, G = 8 1.5937 (5 x 10^5 profiles),
        # against 1.5825 for G = 7 without the one-bidder menus.
        # Measured with `infozoo train gemnet --setting S` (2-core CPU, seed 0): 2x3 certified
        # 1.2802 +- 0.0005 on 10^6 profiles (seed 123), 0.0309 +- 0.0002 above item-wise Myerson,
        # in 52 s (2,985,984 product cells, 0.8 GB); the distilled Lottery AMA on the floor-0.3 grid,
        # with the price table, certified 1.2544 on the transform's 200k profiles against 1.2807
        # (227 MILPs, 25 min with another job running). 3x3 G = 7 certified 1.5917 +- 0.0004 in
        # 3.8 min (40,353,607 product cells, 3.9 GB): 0.0021 +- 0.0001 below item-wise Myerson,
        # which the grid's rounding costs; G = 8 ties with it (-0.00004 +- 0.00014) in 10.3 min
        # but needed 14.5 GB (134M product cells). With the check's load tables shared between
        # identical menus and stored as uint8 (certify.own_loads) and summed as views
        # (certify.grid_failing), the same G = 7 check takes 7 s instead of 196 s, and: G = 9
        # (387,420,489 product cells) certified 1.5949 +- 0.0004, 0.0012 +- 0.0001 above item-wise
        # Myerson, in 2.5 min (check 66 s, 7.6 GB); G = 10 (10^9 product cells) 1.5959 +- 0.0004,
        # +0.0022 +- 0.0001, in 4.1 min but 18.4 GB, so G = 9 is the default.
        # 2x5: the distilled Lottery AMA on G = 4 (the default before) left 658,690 of 1,048,576
        # product cells failing the first check (its MILP rounds would run for hours); the grid
        # Myerson on G = 4 (floor 0.5) certified 2.1472 +- 0.0006 on 10^6 profiles (seed 123),
        # 0.0638 +- 0.0003 above item-wise Myerson but 0.0415 +- 0.0005 below the grand bundle, in
        # 4.8 min (check 218 s: with two bidders every menu cell is a distinct menu; 3.3 GB), and in
        # 2.2 min (check 51 s, 1.3 GB) once 0/1 menus got the bilinear candidate test
        # (certify.BILINEAR_TOL; same certificate and revenue; 2x3 check 16 s -> 4 s, 3x3 62 -> 58 s).
        # G = 5 ([0, 0.5) and 4 of width 1/8; 9,765,625 product cells), the default: certified
        # 2.1570 +- 0.0006, 0.0098 +- 0.0001 above G = 4 (paired), 0.0736 +- 0.0003 above item-wise
        # Myerson, in 8.7 min (train 78 s, check 434 s, 1.5 GB).
        floor = GRID_FLOOR.get(n * m)
        breaks = floor_breaks(menu_grid, floor) if floor else ()
        if n * m in GRID_MYERSON and iid_uniform(setting):
            return Config(menu_size=2 ** m - 1, hidden=(128, 128), activation="tanh", steps=0,
                          batch=2048 if full else 1024, menu_grid=menu_grid, grid_breaks=breaks,
                          warm_start="myerson", warm_monopoly=True, warm_gap=0.001,
                          warm_steps=8000 if full else 4000, alloc_snap=0.01, milp_rounds=30,
                          milp_time_limit=30.0, own_depth=0, seed=seed, profile=profile)
        # snap_prices on the AMA start (quick sweep checkpoints, paired on 10^6 profiles, seed 123):
        # 2x2 +0.0031 +- 0.0001 (0.8653), unit-2x2 -0.0022 +- 0.0001 (0.6686), so not for unit demand.
        return Config(menu_size=128 if full else 64, hidden=(128, 128), activation="tanh",
                      own_depth=OWN_DEPTH.get(n * m, 4), snap_prices=not setting.unit_demand,
                      steps=0, batch=2048 if full else 1024, menu_grid=menu_grid, grid_breaks=breaks,
                      warm_start="lottery-ama",
                      warm_steps=8000 if full else 4000, alloc_snap=0.01, milp_rounds=30, milp_time_limit=30.0,
                      grid_batch=1000 if setting.unit_demand else 4000, seed=seed, profile=profile)
    # larger settings: continuous menus, certified through Lipschitz/interval cell bounds.
    # tanh and narrow nets keep the menus' Lipschitz constants, hence the cell bounds and the MILP,
    # small enough to certify on a CPU (ReLU 128x128 menus left 80k failing cells on 2x2).
    # warm_start: see the module docstring; choice_margin trains the utility margin the certificate
    # needs; alloc_snap makes near-0/1 allocations exact, so an element selling item 2 does not
    # also give away 0.001 of item 1 (such leakage failed condition (*) on ~10^4 cells of a 2x2
    # menu by a slack of ~1e-4). Measured on 2x2 (2-core CPU): Lottery AMA start, margin 0.02:
    # seed 0 certified with 153k cells and one MILP (transform 444 s), revenue 0.852 (train 617 s).
    return Config(menu_size=128 if full else 32, hidden=(128, 128) if full else (64, 64), activation="tanh",
                  steps=8000 * (5 if full else 1), batch=2048 if full else 1024, grid=2, rho=300.0,
                  lr=2e-4, lr_end=2e-5, temp_start=2000.0, temp_end=2000.0, choice_margin=0.02,
                  warm_start="lottery-ama", warm_steps=4000, warm_gap=0.05, alloc_snap=0.01, max_depth=24,
                  max_cells=1_500_000 if full else 600_000, seed=seed,
                  profile=profile)


def check_certificate_start(setting: AuctionSetting, cfg: Config) -> None:
    """Refuse, before any training, a config whose certificate could not start: discrete settings,
    one bidder and menu grids always can; continuous menus only while grid^(n m) stays within
    ``certify.INITIAL_CELL_LIMIT`` (not 3x10: 2^30 starting cells)."""
    from infozoo.solvers.gemnet.certify import check_initial_grid

    if cfg.transform and not cfg.menu_grid and setting.bidders > 1 and not setting.discrete:
        check_initial_grid(cfg.grid, setting.bidders * setting.items)


def certifiable(setting: AuctionSetting, profile: str = "quick") -> bool:
    """Whether the default config's certificate can start on ``setting`` (``check_certificate_start``)."""
    try:
        check_certificate_start(setting, default_config(setting, profile))
    except ValueError:
        return False
    return True


def iid_uniform(setting: AuctionSetting) -> bool:
    """Additive values i.i.d. U[0, h] over every bidder and item (what ``monopoly_prices`` assume)."""
    if setting.discrete or setting.unit_demand:
        return False
    low, high = setting.low(), setting.high()
    return bool((low == 0).all() and (high == high[0, 0]).all())


# ---- training -------------------------------------------------------------------------------


def train_menus(setting: AuctionSetting, cfg: Config) -> tuple[MenuNetwork, dict[str, Any], Targets | None]:
    """Train the menu networks by the loss in the module docstring; returns the net, a log and
    the warm start's target menus (None without a warm start)."""
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    g = torch_generator(cfg.seed)
    dtype = torch.float32
    net = MenuNetwork(setting.bidders, setting.items, cfg.menu_size, setting.unit_demand,
                      setting.low(), setting.high(), tuple(cfg.hidden), cfg.activation,
                      cfg.alloc_sharpness, cfg.alloc_init, cfg.alloc_snap, cfg.menu_grid,
                      tuple(cfg.grid_breaks)).to(dtype)
    log: dict[str, Any] = {"revenue": [], "incompatibility": []}
    targets = None
    if cfg.warm_start != "none":
        t0 = time.perf_counter()
        teacher, targets = warm_start(net, setting, cfg, g)
        log["warm_start"] = {"kind": cfg.warm_start, "time": time.perf_counter() - t0,
                             "teacher_dir": cfg.teacher_dir or None,
                             "teacher_report": getattr(teacher, "report", None)}
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    decay = (cfg.lr_end / cfg.lr) ** (1 / max(cfg.steps - 1, 1))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, decay)
    al = AugmentedLagrangian(1, rho=cfg.rho, rho_growth=cfg.rho_growth, rho_every=cfg.rho_every,
                             update_every=cfg.lam_every)
    vrange = float((setting.high() - setting.low()).max())
    bar = progress(range(cfg.steps), desc=f"{cfg.kind} {setting.name}")
    for step in bar:
        v = setting.sample(cfg.batch, g, dtype=dtype)
        temp = cfg.temp_start * (cfg.temp_end / cfg.temp_start) ** (step / max(cfg.steps - 1, 1))
        if setting.bidders == 1:  # RochetNet: one constant menu, a matrix product is enough
            alpha, beta = net.constant_menu()  # [K+1, m], [K+1]
            w = soft_argmax((v[:, 0] @ alpha.T - beta) / vrange, temp)  # [B, K+1]
            rev = (w @ beta).mean()
            incompat = torch.zeros(1)
        else:
            alpha, beta = net(v)  # [B, n, K+1, m], [B, n, K+1]
            u = (v.unsqueeze(2) * alpha).sum(-1) - beta
            w = soft_argmax(u / vrange, temp)
            rev = (w * beta).sum((1, 2)).mean()
            incompat = incompatibility(w, alpha).mean().reshape(1)
            if cfg.choice_margin > 0:
                incompat = incompat + margin_incompatibility(u, alpha, cfg.choice_margin * vrange).mean().reshape(1)
        loss = -rev + (al.penalty(incompat) if setting.bidders > 1 else 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        al.step(incompat.detach())
        if step % 100 == 0 or step == cfg.steps - 1:
            log["revenue"].append(float(rev.detach()))
            log["incompatibility"].append(float(incompat.detach()))
            bar.set_postfix(rev=f"{float(rev.detach()):.4f}", g=f"{float(incompat.detach()):.2e}")
    return net, log, targets


def myerson_targets(setting: AuctionSetting, v: torch.Tensor, menu_size: int, gap: float,
                    bounds: torch.Tensor | None = None, monopoly: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Item-wise Myerson written as menus (the warm start): bidder i may buy any bundle S at
    sum_{j in S} t_ij(v_{-i}), t_ij = max(a_ij, phi_ij^{-1}(max(0, max_{k != i} phi_kj(v_kj)))) + gap,
    with the uniform virtual value phi_kj(x) = 2 x - b_kj on U[a_kj, b_kj] (so t = max(reserve,
    the best competing bid) for i.i.d. U[0, 1]). ``gap`` (x the value range) leaves a band where
    nobody buys item j, so the menus are compatible with a margin, as the certificate needs.
    Additive: element k offers bundle number k mod (2^m - 1) (all non-empty bundles), unit-demand
    k mod m (single items); the c-th copy of a bundle is priced c * 0.05 (x range) higher, so the
    copies start distinct. Returns alpha [B, n, K, m] in {0, 1} and prices beta [B, n, K].

    Piecewise-constant menus (``bounds`` [n, m, G+1], the menu grid's cell ends; v are then cell
    centres): the thresholds of ``grid_thresholds``, and with ``monopoly`` (additive, values
    i.i.d. U[0, h]) the first bidder's items M (every other bidder's cell ends at or below the
    reserve) are priced as a one-bidder menu: S costs P_{|M|}(|S & M|) + sum_{j in S - M} t_1j
    with P from ``monopoly_prices``. No other bidder ever takes an item of M (its threshold is
    above its whole cell), so this stays compatible; on M the first bidder is a monopolist and
    bundling earns what it earns for one bidder (2 items: 0.5492 against 0.5 for separate
    reserves)."""
    n, m = setting.shape
    low, high = setting.low(v.dtype), setting.high(v.dtype)
    rng = float((high - low).max())
    if bounds is None:
        phi = 2 * v - high  # [B, n, m]
        t = []
        for i in range(n):
            others = torch.cat([phi[:, :i], phi[:, i + 1:]], 1).amax(1).clamp(min=0)  # [B, m]
            t.append(torch.maximum(low[i], (others + high[i]) / 2) + gap * rng)
        thresholds = torch.stack(t, 1)  # [B, n, m]
    else:
        thresholds, alone = grid_thresholds(setting, v, bounds, gap)
    if setting.unit_demand:
        bundles = torch.eye(m, dtype=v.dtype)
    else:
        bundles = torch.tensor([[(b >> j) & 1 for j in range(m)] for b in range(1, 2 ** m)], dtype=v.dtype)
    k = torch.arange(menu_size)
    alloc = bundles[k % len(bundles)]  # [K, m]
    beta = 0.05 * rng * (k // len(bundles)).to(v.dtype)
    if monopoly:
        if bounds is None or not iid_uniform(setting):
            raise ValueError("monopoly bundles need a menu grid and additive values i.i.d. U[0, h]")
        table = torch.zeros(m + 1, m + 1, dtype=v.dtype)  # P_k(s), s items of a monopoly set of k
        for size in range(1, m + 1):
            table[size, : size + 1] = torch.tensor(monopoly_prices(size), dtype=v.dtype) * float(high[0, 0])
        sizes = alone.sum(-1, keepdim=True).expand(-1, -1, menu_size)  # [B, n, K]
        taken = torch.einsum("bnm,km->bnk", alone.to(v.dtype), alloc).long()  # |S & M|
        beta = beta + table[sizes, taken]
        thresholds = torch.where(alone, 0.0, thresholds)  # the items of M are priced by P alone
    beta = beta + torch.einsum("bnm,km->bnk", thresholds, alloc)
    return alloc.expand(v.shape[0], n, -1, -1), beta


def grid_thresholds(setting: AuctionSetting, v: torch.Tensor, bounds: torch.Tensor, gap: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid Myerson: item thresholds t [B, n, m] for piecewise-constant menus (v are cell
    centres, ``bounds`` [n, m, G+1] the cell ends) and the mask M [B, n, m] of the first bidder's
    items on which every other bidder's cell ends at or below the reserve (empty for the other
    bidders: two bidders that both saw the rest below the reserve could both take the item
    through a bundle, so only the first bidder is given such items).

    The best competing bid is only known to its cell c_kj, so t_ij = max(reserve_ij, e) + gap
    with e the lower end of the highest competing cell C = max_{k != i} c_kj if bidder i has
    priority there (no competitor of lower index sits in C), else its upper end. Two bidders then
    never both afford item j anywhere in a product cell: the one in the lower cell faces a
    threshold at least the lower end of the other's cell, and of two in the same cell the later
    one faces the cell's upper end. So the grid Myerson is compatible on every product cell by
    construction and loses only the rounding: on 3x3 U[0, 1] with cells [0, 1/2), then three of
    width 1/6, 1.5625 against item-wise Myerson's 1.5938 (Monte Carlo, 2 x 10^6 profiles; 1.5821
    with five cells of 0.1 above 1/2); priced at the cell centres instead, pairs of bidders can
    both afford an item in one product cell, which the raise-only transform can only settle by
    pricing both out. Needs the same value range per item for every bidder (i.i.d. across
    bidders)."""
    n = setting.bidders
    low, high = setting.low(v.dtype), setting.high(v.dtype)
    if not all(torch.equal(low[0], low[i]) and torch.equal(high[0], high[i]) for i in range(n)):
        raise ValueError("the grid Myerson warm start needs every bidder's values of an item on the "
                         "same range (i.i.d. across bidders); use warm_start='lottery-ama'")
    rng = float((high - low).max())
    ends = bounds.to(v.dtype)
    cell = grid_index(v, ends[..., 1:-1])  # [B, n, m]
    reserve = torch.maximum(low, high / 2)  # phi^{-1}(0), at least the lowest value
    t, alone = [], []
    for i in range(n):
        top = torch.cat([cell[:, :i], cell[:, i + 1:]], 1).amax(1)  # [B, m]
        behind = (cell[:, :i] == top.unsqueeze(1)).any(1)  # a bidder of lower index is in C
        lo, hi = cell_ends(ends[i], top)
        t.append(torch.maximum(reserve[i], torch.where(behind, hi, lo)) + gap * rng)
        alone.append(hi <= reserve[i] if i == 0 else torch.zeros_like(behind))
    return torch.stack(t, 1), torch.stack(alone, 1)


@functools.cache
def monopoly_prices(k: int, profiles: int = 200_000) -> tuple[float, ...]:
    """Prices P(0..k) (P(0) = 0; cached) of the best size-priced deterministic menu for one bidder
    with k i.i.d. U[0, 1] items: any s items for P(s), so the bidder takes its s best items for
    the s maximising (sum of its s best values) - P(s). Found by coordinate search (a grid of
    trial prices around each P(s), halved 30 times) on a fixed sample, starting from separate
    reserves P(s) = s / 2 (k = 1: Myerson's reserve 1/2, exactly). For k = 2 it recovers
    Manelli-Vincent's optimum (items 2/3, bundle (4 - sqrt 2) / 3, revenue 0.5492); for k = 3
    it gives ~0.875 against 0.75 for separate sales (Giannakopoulos and Koutsoupias prove a
    deterministic menu, their straight-jacket auction, optimal for up to six uniform items)."""
    if k == 1:
        return (0.0, 0.5)  # Myerson's reserve, exactly
    g = torch.Generator().manual_seed(k)
    best = torch.rand(profiles, k, generator=g, dtype=torch.float64).sort(-1, descending=True).values
    worth = torch.cat([torch.zeros(profiles, 1, dtype=torch.float64), best.cumsum(-1)], -1)  # [P, k+1]

    def revenue(p: torch.Tensor) -> float:
        return float(p[(worth - p).argmax(-1)].mean())  # ties -> fewer items

    prices = torch.arange(k + 1, dtype=torch.float64) / 2
    step = 0.1
    for _ in range(30):
        for s in range(1, k + 1):
            trials = prices[s] + step * torch.linspace(-1, 1, 9, dtype=torch.float64)
            scores = []
            for x in trials.tolist():
                p = prices.clone()
                p[s] = x
                scores.append(revenue(p))
            prices[s] = trials[max(range(len(scores)), key=scores.__getitem__)]
        step /= 2
    return tuple(prices.tolist())


def distil(net: MenuNetwork, setting: AuctionSetting, cfg: Config, g: torch.Generator, targets: Targets,
           desc: str) -> None:
    """Warm start: regress every bidder's menu-MLP outputs onto target menus ``targets(v)`` (alloc
    [B, n, K, m] in [0, 1], prices [B, n, K]) for ``warm_steps`` Adam steps. Allocation targets
    become logits (additive: logit(a) with a clipped to [e, 1 - e], e = sigmoid(-6), so 0/1 give
    -+6; unit-demand: log a_j - log(1 - sum_j a_j) against the dummy's 0, both clipped at e),
    prices softplus^{-1}(beta / scale)."""
    if setting.discrete or setting.bidders == 1:
        raise ValueError(f"warm_start={cfg.warm_start!r} needs a continuous setting with several bidders")
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    e = torch.sigmoid(torch.tensor(-6.0))
    for _ in progress(range(cfg.warm_steps), desc=desc):
        v = setting.sample(cfg.batch, g, dtype=torch.float32)
        alloc, beta = (t.float() for t in targets(net.quantise(v.double())))
        if setting.unit_demand:
            rest = (1 - alloc.sum(-1, keepdim=True)).clamp(min=e)
            logit_a = torch.cat([alloc.clamp(min=e).log() - rest.log(), torch.zeros_like(rest)], -1)
        else:
            a = alloc.clamp(e, 1 - e)
            logit_a = a.log() - (1 - a).log()
        logit_p = torch.log(torch.expm1((beta / net.price_scale).clamp(min=1e-3)))
        loss = torch.zeros(())
        KA = net.K * net.A
        for i, mlp_i in enumerate(net.nets):
            raw = mlp_i(net.inputs(v, i))
            pred_a = raw[:, :KA].reshape(-1, net.K, net.A) * net.alloc_sharpness
            loss = loss + ((pred_a - logit_a[:, i]) ** 2).mean() + ((raw[:, KA:] - logit_p[:, i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def teacher_targets(teacher: Any, setting: AuctionSetting, menu_size: int, g: torch.Generator,
                    profiles: int = 20_000) -> Targets:
    """Target menus from a trained menu-based mechanism ``teacher`` (the ``menus(bids)`` contract,
    e.g. an affine maximizer, whose induced menu for bidder i prices lottery a at
    (1/w_i)[max_a' S^{-i}(a') - S^{-i}(a)]). Its elements are ranked by how often bidders take
    them on ``profiles`` random profiles and the ``menu_size`` most used are kept (cycled, each
    further copy priced 0.05 x range higher, if the teacher has fewer); prices are capped at the
    largest bundle value + 0.1 x range (such elements are never bought)."""
    v = setting.sample(profiles, g, dtype=torch.float64)
    alloc, price = teacher.menus(v)  # [P, n, K_T, m], [P, n, K_T]
    pick = ((v.unsqueeze(2) * alloc).sum(-1) - price).argmax(-1)  # [P, n]
    counts = torch.bincount(pick.flatten(), minlength=alloc.shape[2])
    order = torch.argsort(-counts.to(torch.float64), stable=True)
    k = torch.arange(menu_size)
    keep = order[k % len(order)]
    rng = float((setting.high() - setting.low()).max())
    offset = 0.05 * rng * (k // len(order)).to(torch.float64)
    cap = float(setting.high().sum(-1).max()) + 0.1 * rng

    def targets(bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            a, p = teacher.menus(bids.to(torch.float64))
        return a[:, :, keep], (p[:, :, keep] + offset).clamp(max=cap)

    return targets


def warm_start(net: MenuNetwork, setting: AuctionSetting, cfg: Config, g: torch.Generator
               ) -> tuple[Any, Targets]:
    """Run the configured warm start (see the module docstring); returns the teacher (or None) and
    the target menus the network was distilled onto."""
    if cfg.warm_start == "myerson":
        bounds = net.grid_bounds if net.menu_grid else None

        def targets(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return myerson_targets(setting, v, net.K, cfg.warm_gap, bounds, cfg.warm_monopoly)

        distil(net, setting, cfg, g, targets, "warm start (item-wise Myerson menus)")
        return None, targets
    from infozoo import registry

    if cfg.teacher_dir:  # loaded like ``eval --mechanism NAME:DIR``, which refuses another setting
        teacher = registry.make_mechanism(f"{cfg.warm_start}:{cfg.teacher_dir}", setting)
    else:
        teacher = best_teacher(setting, cfg)
    targets = teacher_targets(teacher, setting, net.K, g)
    distil(net, setting, cfg, g, targets, f"warm start ({cfg.warm_start} menus)")
    return teacher, targets


def snap_prices(net: MenuNetwork, setting: AuctionSetting, targets: Targets) -> torch.Tensor:
    """Piecewise-constant menus: the price table delta [n, menu cells, K+1] (the transform's price
    changes, a function of the cell of b_{-i} alone, so SP is kept) that makes every menu price
    equal the warm start's target on every cell of the menu grid. Distillation leaves price errors
    of ~0.01 (3x3, G = 4: mean 0.012, max 0.14 after 4000 steps), enough to open conflicts in
    menus that are compatible by construction (the grid Myerson of ``myerson_targets``);
    allocations are not snapped (0/1 targets come out exact through ``alloc_snap``). ``net`` is the
    mechanism's float64 network (``GemNetMechanism`` converts it), so the table matches what it
    evaluates."""
    table = torch.zeros(setting.bidders, net.menu_grid ** ((setting.bidders - 1) * setting.items),
                        net.K + 1, dtype=torch.float64)
    for i in range(setting.bidders):
        prof = menu_cell_profiles(net, i, setting.low()[i])
        with torch.no_grad():
            _, price = net(prof)
            _, target = targets(prof)
        table[i, :, 1:] = target[:, i].to(torch.float64) - price[:, i, 1:].to(torch.float64)
    return table


def best_teacher(setting: AuctionSetting, cfg: Config, profiles: int = 65_536) -> Any:
    """Train the warm-start teacher ``cfg.teacher_restarts`` times (seeds seed + 1000 r) and keep
    the one with the highest revenue on validation profiles drawn under their own seed (never the
    test profiles of ``evaluate``): GemNet keeps about 0.01 below its teacher on 2x2, so the
    teacher's seed shows in GemNet's revenue (seed 0: teacher 0.876, GemNet 0.862; seed 1: 0.870,
    0.858)."""
    from infozoo import registry
    from infozoo.envs.auction.metrics import revenue, run_chunked

    module = registry.load("solver", cfg.warm_start)
    teachers = [module.fit(setting, module.default_config(setting, cfg.profile, cfg.seed + 1000 * r))
                for r in range(cfg.teacher_restarts)]
    if len(teachers) == 1:
        return teachers[0]
    val = setting.sample(profiles, torch_generator(cfg.seed + 424_242))
    return max(teachers, key=lambda t: float(revenue(run_chunked(t, val)).mean()))


def incompatibility(w: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Expected over-allocation per profile [B] when the bidders draw their elements
    independently from the relaxed choices w [B, n, K+1] (alpha [B, n, K+1, m]):
    n = 2 exactly, sum_j sum_{k,l} w_1^k w_2^l max(0, alpha_1j^k + alpha_2j^l - 1);
    n > 2 by the expected allocation, sum_j max(0, sum_i x_ij - 1) with x_i = sum_k w_i^k alpha_i^k
    (a lower bound: it misses over-allocation that happens only on some joint draws)."""
    if w.shape[1] == 2:
        pair = (alpha[:, 0, :, None, :] + alpha[:, 1, None, :, :] - 1).clamp(min=0)  # [B, K+1, K+1, m]
        return torch.einsum("bk,bl,bklm->b", w[:, 0], w[:, 1], pair)
    x = (w.unsqueeze(-1) * alpha).sum(2)
    return (x.sum(1) - 1).clamp(min=0).sum(-1)


def margin_incompatibility(u: torch.Tensor, alpha: torch.Tensor, eps: float) -> torch.Tensor:
    """Over-allocation per profile [B] of the near-best sets, the training form of the
    certificate's condition (*): with nu_i^k = clip(1 + (u_i^k - max_k' u_i^k') / eps, 0, 1)
    (1 at the chosen element, 0 beyond a utility gap eps),

        g_eps(v) = sum_j max(0, sum_i max_k nu_i^k alpha_ij^k - 1).

    It is at least the hard-argmax over-allocation (nu = 1 at the argmax), and it is zero only if
    no two elements that bidders take within eps of their best utility over-allocate: the margin
    that lets a cell of the certificate contain switching points of several bidders."""
    near = (1 + (u - u.amax(-1, keepdim=True)) / eps).clamp(0, 1)
    load = (near.unsqueeze(-1) * alpha).amax(2)  # [B, n, m]
    return (load.sum(1) - 1).clamp(min=0).sum(-1)


def fit(setting: AuctionSetting, config: Config | None = None) -> GemNetMechanism:
    """Train GemNet (RochetNet for one bidder), then transform prices and certify."""
    from infozoo.solvers.gemnet.certify import verify_random
    from infozoo.solvers.gemnet.transform import transform

    cfg = config or default_config(setting)
    check_config(cfg)
    check_certificate_start(setting, cfg)
    t0 = time.perf_counter()
    net, log, targets = train_menus(setting, cfg)
    mech = GemNetMechanism(setting, net, config_dict(cfg, setting))
    snap = targets is not None and cfg.menu_grid > 0 and cfg.steps == 0 and cfg.snap_prices
    if snap:  # piecewise-constant menus taken as distilled: prices set to the targets' on every cell
        mech.grid, mech.delta = PriceGrid(net.grid_edges.clone()), snap_prices(mech.net, setting, targets)
    if "warm_start" in log:
        log["warm_start"]["prices_snapped"] = snap
    train_time = time.perf_counter() - t0
    mech.report = {"train_time": train_time,
                   "train_revenue_last": log["revenue"][-1] if log["revenue"] else None,
                   "train_incompatibility_last": log["incompatibility"][-1] if log["incompatibility"] else None}
    if "warm_start" in log:  # train_time includes the warm start (and training the teacher)
        mech.report["warm_start"] = log["warm_start"]
    if cfg.transform:
        transform(mech, cfg)
    mech.report["over_allocation_random"] = verify_random(mech, cfg.verify_profiles, seed=cfg.seed + 7)
    return mech


def check_config(cfg: Config) -> None:
    if cfg.menu_size < 1 or cfg.steps < 0 or cfg.batch < 1:
        raise ValueError("menu_size and batch must be positive integers and steps >= 0 (0: warm start only)")
    if cfg.teacher_restarts < 1:
        raise ValueError(f"teacher_restarts must be >= 1, got {cfg.teacher_restarts}")
    if cfg.menu_grid < 0:
        raise ValueError(f"menu_grid must be 0 (continuous menus) or >= 1 cells per dimension, got {cfg.menu_grid}")
    if cfg.grid_breaks:
        if not cfg.menu_grid:
            raise ValueError("grid_breaks needs a menu grid (menu_grid > 0)")
        check_breaks(tuple(cfg.grid_breaks), cfg.menu_grid)
    if cfg.solver not in ("highs", "cbc"):
        raise ValueError(f"unknown solver {cfg.solver!r}; valid: highs, cbc")
    if cfg.grid < 1:
        raise ValueError(f"grid must be >= 1 cell per dimension, got {cfg.grid}")
    if cfg.warm_start not in ("none", "myerson", *WARM_TEACHERS):
        raise ValueError(f"unknown warm_start {cfg.warm_start!r}; valid: none, myerson, "
                         f"{', '.join(WARM_TEACHERS)}")
    if cfg.warm_monopoly and (cfg.warm_start != "myerson" or not cfg.menu_grid):
        raise ValueError("warm_monopoly needs warm_start='myerson' on a menu grid (menu_grid > 0)")


def config_dict(cfg: Config, setting: AuctionSetting) -> dict[str, Any]:
    d = asdict(cfg)
    d["hidden"] = list(cfg.hidden)
    d["grid_breaks"] = list(cfg.grid_breaks)
    d["setting"] = setting.to_dict()
    return d


# ---- checkpoints ----------------------------------------------------------------------------


def load(directory: str | Path) -> GemNetMechanism:
    """Load a GemNet/RochetNet checkpoint; clear errors when it is missing or corrupted."""
    directory = Path(directory)
    tensors, config = load_checkpoint(directory)
    if config.get("kind") not in ("gemnet", "rochetnet"):
        raise CheckpointError(f"{str(directory)!r} holds a {config.get('kind')!r} checkpoint, "
                              "not a gemnet/rochetnet one")
    try:
        setting = from_dict(config["setting"])
        fields = {f.name for f in dataclasses.fields(Config)}
        cfg = Config(**{k: v for k, v in config.items() if k in fields})
        net = MenuNetwork(setting.bidders, setting.items, cfg.menu_size, setting.unit_demand,
                          setting.low(), setting.high(), tuple(cfg.hidden), cfg.activation,
                          cfg.alloc_sharpness, alloc_snap=cfg.alloc_snap, menu_grid=cfg.menu_grid,
                          grid_breaks=tuple(cfg.grid_breaks)).double()
        state = {k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")}
        net.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {str(directory)!r} is inconsistent: {err}") from None
    grid = PriceGrid(tensors["price.edges"]) if "price.edges" in tensors else None
    mech = GemNetMechanism(setting, net, config, grid, tensors.get("price.delta"))
    mech.report = config.get("report", {})
    mech.certified = config.get("certified")
    cert_path = directory / CERTIFICATE
    mech.certificate = read_json(cert_path, "certificate") if cert_path.exists() else None
    return mech

