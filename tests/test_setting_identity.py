"""Settings are identified by content (a hash of their canonical JSON), never by their ``name``:
a file named like a built-in of other content is refused; the checkpoint check compares content."""

import json

import pytest

from infozoo import registry
from infozoo.registry import load_setting, make_mechanism

FAKE = {"domain": "auction", "bidders": 1, "items": 2, "valuation": "additive", "name": "additive-1x2-uniform",
        "values": {"kind": "uniform", "low": 0, "high": 2}}


def _file(tmp_path, doc, name="s.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_a_name_of_a_builtin_with_other_content_is_refused(tmp_path):
    """Such a file used to be reported under the built-in's name (revenue 1.007 labelled as the
    setting whose revenue is 0.504)."""
    with pytest.raises(ValueError, match="differs from the built-in setting of that name"):
        load_setting(_file(tmp_path, FAKE))
    dm = {"domain": "data-market", "buyers": 1, "states": 2, "prior": {"kind": "beta", "a": 2, "b": 2},
          "name": "dm-1buyer-uniform"}
    with pytest.raises(ValueError, match="differs from the built-in"):
        load_setting(_file(tmp_path, dm))
    same = {**FAKE, "values": {"kind": "uniform", "low": 0, "high": 1}}  # the built-in's own content
    builtin = load_setting("additive-1x2-uniform")
    assert registry.setting_id(load_setting(_file(tmp_path, same))) == registry.setting_id(builtin)


def test_identity_ignores_the_name_and_key_order():
    a = load_setting("additive-2x2-yao")
    doc = dict(reversed(list(a.to_dict().items())))
    b = load_setting({**doc, "name": "my-yao"})
    c = load_setting({k: v for k, v in doc.items() if k != "name"})
    assert registry.setting_id(a) == registry.setting_id(b) == registry.setting_id(c)
    assert registry.setting_label(b) == "my-yao" and registry.setting_label(c) == f"custom-{registry.setting_id(c)[:8]}"
    dm1, dm2 = load_setting("dm-1buyer-uniform"), load_setting("dm-1buyer-two-types")
    assert registry.setting_id(dm1) != registry.setting_id(dm2)


def test_checkpoint_check_compares_content_not_names(tmp_path):
    """The check used to compare names: it refused an unnamed copy of the training setting and, for
    two files of one name, said "trained on 'x', not on 'x'"."""
    from infozoo.solvers.gemnet import train
    from tests.gemnet.test_gemnet import tiny_config

    s = load_setting("additive-1x2-uniform")
    train.fit(s, tiny_config(s, steps=20)).save(tmp_path / "rn")
    unnamed = {k: v for k, v in s.to_dict().items() if k != "name"}
    make_mechanism(f"gemnet:{tmp_path / 'rn'}", load_setting(unnamed))  # same content: accepted
    mine = load_setting({**unnamed, "name": "mine"})
    train.fit(mine, tiny_config(mine, steps=20)).save(tmp_path / "mine")
    other = load_setting({**unnamed, "name": "mine", "values": {"kind": "uniform", "low": 0, "high": 3}})
    with pytest.raises(ValueError, match=r"trained on setting 'mine', not on 'mine' \(content ids \w+ and \w+\)"):
        make_mechanism(f"gemnet:{tmp_path / 'mine'}", other)
