"""Hints in steps: each call shows the next step, the release copies hints.json and --check finds it stale."""

import json
import shutil
from pathlib import Path

import pytest

from utils import hints
from utils.grading.notebook import LabError
from utils.grading.release import release_all

FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch):
    monkeypatch.setattr(hints, "_shown", {})


def test_steps_come_one_at_a_time_then_the_last_repeats(tmp_path, monkeypatch, capsys):
    (tmp_path / "hints.json").write_text(json.dumps({"q1": ["the idea", "chapter 2, section 3", "torch.sum"]}))
    monkeypatch.chdir(tmp_path)
    for _ in range(4):
        hints.hint("q1")
    out = capsys.readouterr().out.splitlines()
    assert "hint 1 of 3" in out[0] and out[0].endswith("the idea")
    assert "hint 2 of 3" in out[1] and out[1].endswith("chapter 2, section 3")
    assert "hint 3 of 3" in out[2] and "last one" in out[2]
    assert "every hint" in out[-1]
    hints.hint("Q9")
    assert "no hints for 'Q9'" in capsys.readouterr().out


def test_no_hints_file_says_where_it_belongs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    hints.hint("q1")
    assert "hints.json" in capsys.readouterr().out


def test_release_copies_hints_and_check_sees_them_stale(tmp_path):
    solutions = tmp_path / "solutions"
    shutil.copytree(FIXTURES / "labdemo", solutions / "labdemo")
    (solutions / "labdemo" / "hints.json").write_text(json.dumps({"q1": ["idea"]}))
    labs = tmp_path / "labs"
    release_all(solutions, labs)
    assert json.loads((labs / "labdemo" / "hints.json").read_text()) == {"q1": ["idea"]}
    assert release_all(solutions, labs, check=True) == []
    (solutions / "labdemo" / "hints.json").write_text(json.dumps({"q1": ["idea", "more"]}))
    assert any("hints.json" in p for p in release_all(solutions, labs, check=True))
    (solutions / "labdemo" / "hints.json").write_text(json.dumps({"q1": []}))
    with pytest.raises(LabError):
        release_all(solutions, labs)
