"""The command line never destroys data, checks what it can before any work, and fails politely:
``--out`` refuses folders it would wipe, ``--force`` swaps a checkpoint atomically, names are
checked up front with a "did you mean", ``--help`` shows defaults."""

import json
import os
from pathlib import Path

import pytest

import infozoo.envs.auction.metrics as auction_metrics
import infozoo.solvers.gemnet.rochetnet as rochetnet
from infozoo.cli import CLIError, build_parser, main, with_overrides

TINY_RN = ["--set", "steps=20", "--set", "menu_size=4"]


def _user_files(folder):
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    (folder / "notes.txt").write_text("x\n")


def _no_training(monkeypatch):
    def fit(*a, **k):
        raise AssertionError("training started although the command was bound to fail")

    monkeypatch.setattr(rochetnet, "fit", fit)


def test_train_out_refuses_a_folder_with_other_files_and_keeps_them(tmp_path, capsys):
    """`train --out p` used to leave only the checkpoint in p (notes.txt and sub/ deleted)."""
    out = tmp_path / "p"
    _user_files(out)
    assert main(["train", "data-market-net", "--setting", "dm-1buyer-two-types", "--out", str(out),
                 "--set", "steps=30", "--set", "restarts=1"]) == 2
    assert "not empty and is not an infozoo checkpoint" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "x\n" and (out / "sub" / "data.csv").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "sub"]
    assert main(["train", "data-market-net", "--setting", "dm-1buyer-two-types", "--out", str(out), "--force",
                 "--set", "steps=30", "--set", "restarts=1"]) == 2  # --force replaces checkpoints only
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "sub"]


def test_train_out_dot_keeps_the_working_directory(tmp_path, monkeypatch, capsys):
    """`--out "$PWD"` used to wipe the working directory's files."""
    _user_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    for out in (".", str(tmp_path)):
        assert main(["train", "rochetnet", "--setting", "additive-1x2-uniform", "--out", out, *TINY_RN]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "sub"]


def test_train_out_is_checked_before_training(tmp_path, monkeypatch, capsys):
    """`train --out .` used to train fully, then fail on the folder's name."""
    _user_files(tmp_path / "busy")
    (tmp_path / "file").write_text("x")
    _no_training(monkeypatch)
    for out in (tmp_path / "busy", tmp_path / "file", tmp_path / "file" / "below"):
        assert main(["train", "rochetnet", "--setting", "additive-1x2-uniform", "--out", str(out)]) == 2


def test_force_replaces_only_a_checkpoint_of_the_same_solver_and_swaps_it_in(tmp_path, capsys):
    out = tmp_path / "rn"
    base = ["train", "rochetnet", "--setting", "additive-1x2-uniform", "--out", str(out)]
    assert main([*base, *TINY_RN]) == 0
    first = (out / "config.json").read_text()
    assert main([*base, "--set", "steps=20", "--set", "menu_size=5"]) == 2  # no --force: refused, kept
    assert "pass --force" in capsys.readouterr().err and (out / "config.json").read_text() == first
    assert main([*base, "--force", "--set", "steps=20", "--set", "menu_size=5"]) == 0
    assert json.loads((out / "config.json").read_text())["menu_size"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rn"]  # no temporary or old folder left
    other = ["train", "data-market-net", "--setting", "dm-1buyer-two-types", "--out", str(out), "--force"]
    assert main([*other, "--set", "steps=30", "--set", "restarts=1"]) == 2
    assert "holds a 'rochetnet' checkpoint" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["menu_size"] == 5


def test_an_empty_out_folder_is_filled_in_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "rochetnet", "--setting", "additive-1x2-uniform", "--out", ".", *TINY_RN]) == 0
    assert (tmp_path / "config.json").is_file() and os.path.samefile(os.getcwd(), tmp_path)


def test_save_checkpoint_keeps_both_the_folder_and_the_new_checkpoint_when_it_must_refuse(tmp_path, monkeypatch):
    import torch

    from infozoo.core import checkpoint
    from infozoo.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    out = tmp_path / "ck"
    _user_files(out)
    with pytest.raises(CheckpointError, match="nothing was written"):
        save_checkpoint(out, {"w": torch.ones(2)}, {"kind": "demo"})
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "sub"]
    fresh = tmp_path / "fresh"
    write = checkpoint.atomic_write_json

    def user_writes_meanwhile(path, doc):  # the folder fills up while the checkpoint is written
        _user_files(fresh)
        write(path, doc)

    monkeypatch.setattr(checkpoint, "atomic_write_json", user_writes_meanwhile)
    with pytest.raises(CheckpointError, match="kept in") as err:
        save_checkpoint(fresh, {"w": torch.ones(2)}, {"kind": "demo"})
    kept = str(err.value).rsplit("kept in '", 1)[1].rstrip("')")
    assert load_checkpoint(kept, "demo")[0]["w"].tolist() == [1.0, 1.0]
    assert sorted(p.name for p in fresh.iterdir()) == ["notes.txt", "sub"]


def test_collect_and_report_do_not_overwrite_files_they_did_not_write(tmp_path, capsys):
    data = tmp_path / "d.safetensors"
    data.write_text("precious")
    assert main(["collect", "dec-tiger-v0", "--episodes", "2", "--out", str(data)]) == 2
    assert data.read_text() == "precious"
    assert main(["collect", "dec-tiger-v0", "--episodes", "2", "--out", str(data), "--force"]) == 0
    readme = tmp_path / "README.md"
    readme.write_text("# my project\n")
    db = tmp_path / "r.sqlite"
    assert main(["bench", "auction", "--db", str(db), "--setting", "additive-2x2-yao", "--method", "vcg",
                 "--out", str(tmp_path)]) == 2
    assert not db.exists()  # refused before any task ran
    assert main(["report", "--db", str(db), "--out", str(tmp_path)]) == 2
    assert readme.read_text() == "# my project\n"


def test_eval_rejects_an_unknown_baseline_before_evaluating(monkeypatch, capsys):
    """`eval --baseline vickrey` used to run the whole evaluation before rejecting the name."""
    calls = []
    monkeypatch.setattr(auction_metrics, "evaluate", lambda *a, **k: calls.append(1) or {"revenue": 0.0})
    assert main(["eval", "--setting", "additive-2x2-uniform", "--mechanism", "vcg", "--baseline", "vickrey"]) == 2
    assert calls == [] and "unknown mechanism 'vickrey'" in capsys.readouterr().err
    assert main(["eval", "--setting", "additive-2x2-uniform", "--mechanism", "vcg", "--baseline",
                 "gemnet:/no/dir"]) == 2
    assert calls == []


def test_train_refuses_a_setting_of_another_domain_up_front(tmp_path, monkeypatch, capsys):
    """`train rochetnet --setting dm-1buyer-uniform` used to end in an AttributeError."""
    _no_training(monkeypatch)
    assert main(["train", "rochetnet", "--setting", "dm-1buyer-uniform", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "trains on auction settings" in err and "additive-1x2-uniform" in err


def test_set_refuses_negative_and_non_finite_values(tmp_path, capsys):
    """`--set total_timesteps=-1` used to be accepted."""
    from infozoo.baselines.auction.spm_ppo import Config

    with pytest.raises(CLIError, match="total_timesteps: expected a number >= 0"):
        with_overrides(Config(), ["total_timesteps=-1"])
    with pytest.raises(CLIError, match="finite"):
        with_overrides(Config(), ["learning_rate=NaN"])
    assert with_overrides(Config(), ["log_std_init=-2"]).log_std_init == -2.0  # a negative default stays free
    assert main(["train", "spm-ppo", "--setting", "additive-1x2-uniform", "--out", str(tmp_path / "x"), "--set",
                 "total_timesteps=-1"]) == 2


def test_misspelled_names_get_a_did_you_mean(tmp_path, capsys):
    """A misspelled setting used to list 26 names with no suggestion."""
    assert main(["eval", "--setting", "additive-2x2-unifrom", "--mechanism", "vcg"]) == 2
    assert "did you mean 'additive-2x2-uniform'" in capsys.readouterr().err
    assert main(["train", "rochetnte", "--setting", "additive-1x2-uniform", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 'rochetnet'" in capsys.readouterr().err
    assert main(["eval", "--setting", "additive-2x2-uniform", "--mechanism", "myersn"]) == 2
    assert "did you mean 'myerson'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["list", "--kind", "solvr"])
    assert "did you mean 'solver'" in capsys.readouterr().err


def test_help_shows_defaults():
    """`--help` used to show no defaults."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    text = {name: " ".join(p.format_help().split()) for name, p in sub.items()}
    assert "(default: quick)" in text["train"]
    assert "(default: 100000)" in text["eval"] and "(default: 0)" in text["eval"]
    assert "(default: results/infozoo.sqlite)" in text["bench"]
    assert "(default: None)" not in text["eval"] + text["train"]


def test_ctrl_c_is_one_line_not_a_traceback(tmp_path):
    """Ctrl-C used to print a raw KeyboardInterrupt traceback."""
    import subprocess
    import sys

    code = ("import infozoo.cli as c\n"
            "def boom(args): raise KeyboardInterrupt\n"
            "c.cmd_eval = boom\n"
            "raise SystemExit(c.main(['eval', '--setting', 'additive-2x2-yao', '--mechanism', 'vcg']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 130 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("infozoo: interrupted")
