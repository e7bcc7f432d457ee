"""Bad input gets a clear error naming what was wrong and what is valid."""

import json

import numpy as np
import pytest
import torch

import infozoo
from infozoo.cli import main
from infozoo.registry import load_setting, make_mechanism


def test_unknown_setting_lists_valid_names():
    with pytest.raises(ValueError, match="additive-2x2-uniform"):
        load_setting("additive-9x9-gaussian")


def test_unknown_mechanism_lists_valid_names():
    with pytest.raises(ValueError, match="vcg"):
        make_mechanism("second-best", load_setting("additive-2x2-uniform"))


@pytest.mark.parametrize("doc,match", [
    ({"domain": "auction", "bidders": 2, "items": 2, "valuation": "additive"}, "missing key 'values'"),
    ({"domain": "auction", "bidders": 0, "items": 2, "valuation": "additive",
      "values": {"kind": "uniform", "low": 0, "high": 1}}, "positive integer"),
    ({"domain": "auction", "bidders": 2, "items": 2, "valuation": "combinatorial",
      "values": {"kind": "uniform", "low": 0, "high": 1}}, "valid: additive, unit-demand"),
    ({"domain": "auction", "bidders": 2, "items": 2, "valuation": "additive",
      "values": {"kind": "gaussian"}}, "valid kinds: uniform, discrete"),
    ({"domain": "auction", "bidders": 2, "items": 2, "valuation": "additive",
      "values": {"kind": "uniform", "low": 1, "high": 1}}, "low < high"),
    ({"domain": "auction", "bidders": 2, "items": 2, "valuation": "additive",
      "values": {"kind": "uniform", "low": [[0, 0]], "high": 1}}, "2 x 2 table"),
    ({"domain": "auction", "bidders": 2, "items": 2, "valuation": "additive",
      "values": {"kind": "discrete", "support": [3, 7], "probs": [0.5, 0.6]}}, "sum to 1"),
    ({"domain": "auction", "bidders": 2, "items": 2, "valuation": "additive", "reserve": 1,
      "values": {"kind": "uniform", "low": 0, "high": 1}}, "unknown key"),
    ({"domain": "auctions"}, "valid domains"),
    ([1, 2, 3], "JSON object"),
])
def test_malformed_setting_json(tmp_path, doc, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=match):
        load_setting(str(path))


def test_setting_file_that_is_not_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{bidders: 2")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_setting(str(path))


def test_missing_setting_file():
    with pytest.raises(ValueError, match="does not exist"):
        load_setting("no/such/file.json")


def test_nan_bid_names_the_bidder():
    env = infozoo.make("auction-v0")
    obs, _ = env.reset(seed=0)
    obs["bidder_1"] = np.array([np.nan, 0.5], dtype=np.float32)
    with pytest.raises(ValueError, match="bidder_1"):
        env.step(obs)
    with pytest.raises(ValueError, match="bidder_0"):
        make_mechanism("vcg", load_setting("additive-2x2-uniform"))(
            torch.tensor([[[float("inf"), 0.1], [0.2, 0.3]]], dtype=torch.float64))


def test_wrong_action_shape_is_named():
    env = infozoo.make("auction-v0")
    obs, _ = env.reset(seed=0)
    obs["bidder_0"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"bidder_0 must be a bid vector of shape \(2,\)"):
        env.step(obs)


def test_wrong_bid_batch_shape():
    with pytest.raises(ValueError, match=r"\[batch, 2, 2\]"):
        make_mechanism("vcg", load_setting("additive-2x2-uniform"))(torch.zeros(4, 3, 2, dtype=torch.float64))


def test_cli_bad_input_exits_2_with_one_line(capsys):
    assert main(["eval", "--setting", "nope", "--mechanism", "vcg"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown setting 'nope'" in err[0]
    assert main(["eval", "--setting", "additive-2x2-uniform", "--mechanism", "gemnet:/no/such/dir"]) == 2


def test_setting_of_another_domain_is_refused():
    with pytest.raises(ValueError, match="expected a setting of the auction domain.*additive-2x2-uniform"):
        infozoo.make("auction-v0", setting="dm-1buyer-uniform")


def test_checkpoint_of_another_setting_is_refused(tmp_path):
    import dataclasses

    from infozoo.baselines.auction.ama import vvca

    ama = dataclasses.replace(vvca(load_setting("additive-2x2-uniform")), kind="lottery-ama")
    ama.save(tmp_path / "vvca")
    with pytest.raises(ValueError, match="trained on setting 'additive-2x2-uniform', not on 'unit-2x2-uniform'"):
        make_mechanism(f"lottery-ama:{tmp_path / 'vvca'}", load_setting("unit-2x2-uniform"))
    assert make_mechanism(f"lottery-ama:{tmp_path / 'vvca'}", load_setting("additive-2x2-uniform")) is not None
