"""One parametrised PettingZoo API test over every registered environment.

Every id in ``infozoo.list_envs()`` is checked with PettingZoo's own test suite in both forms:
``api_test`` (AEC), ``parallel_api_test``, ``seed_test``, ``parallel_seed_test``, ``state_test``
and ``render_test``. A new environment is covered as soon as it is registered. Environments that
need an optional extra (mpe2) are skipped when it is missing.
"""

import importlib.util

import pytest
from pettingzoo.test import (
    api_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
    state_test,
)

import infozoo
from infozoo import registry

ENV_IDS = infozoo.list_envs()
NEEDS = {"spread-po-v0": "mpe2"}


def _skip_if_missing(env_id):
    dep = NEEDS.get(env_id)
    if dep and importlib.util.find_spec(dep) is None:
        pytest.skip(f"{env_id} needs the optional package {dep}")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_aec_api(env_id):
    _skip_if_missing(env_id)
    api_test(infozoo.make(env_id, api="aec"), num_cycles=30)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_parallel_api(env_id):
    _skip_if_missing(env_id)
    parallel_api_test(infozoo.make(env_id), num_cycles=30)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeding_is_deterministic(env_id):
    _skip_if_missing(env_id)
    seed_test(lambda: infozoo.make(env_id, api="aec"), num_cycles=30)
    parallel_seed_test(lambda: infozoo.make(env_id), num_cycles=30)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_state(env_id):
    _skip_if_missing(env_id)
    state_test(infozoo.make(env_id, api="aec"), infozoo.make(env_id), num_cycles=10)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_ansi(env_id):
    _skip_if_missing(env_id)
    render_test(lambda render_mode=None: infozoo.make(env_id, api="aec", render_mode=render_mode))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_metadata_says_whether_collectively_observable(env_id):
    _skip_if_missing(env_id)
    env = infozoo.make(env_id)
    assert isinstance(env.metadata.get("collectively_observable"), bool)
    assert env.state_space is not None


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pettingzoo_registry_knows_every_env(env_id):
    import pettingzoo

    _skip_if_missing(env_id)
    env = pettingzoo.make("parallel", f"infozoo/{env_id}")
    assert isinstance(env, pettingzoo.ParallelEnv)
    assert isinstance(pettingzoo.make("aec", f"infozoo/{env_id}"), pettingzoo.AECEnv)


def test_unknown_env_id_names_valid_ids():
    with pytest.raises(ValueError, match="auction-v0"):
        infozoo.make("no-such-env-v0")


def test_unknown_kwarg_names_valid_kwargs():
    with pytest.raises(ValueError, match="setting"):
        infozoo.make("auction-v0", bogus=1)


def test_unknown_api():
    with pytest.raises(ValueError, match="aec"):
        infozoo.make("auction-v0", api="vector")


def test_registry_lists_every_kind():
    assert "auction-v0" in registry.names("env")
    assert {"vcg", "myerson", "bundle", "lp-optimal", "first-price"} <= set(registry.names("mechanism"))
