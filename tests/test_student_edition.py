"""The student edition (scripts/student_edition.py) and the built website hold no solution, answer or hidden test."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
_spec = importlib.util.spec_from_file_location("student_edition", ROOT / "scripts" / "student_edition.py")
edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(edition)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return edition.build(ROOT, tmp_path_factory.mktemp("student"))


def test_the_edition_has_what_a_student_needs(built):
    folder, archive = built
    labs = sorted(p.relative_to(folder).as_posix() for p in folder.glob("labs/*/*.ipynb"))
    assert labs == sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "labs").glob("*/*.ipynb"))
    assert "labs/lab1/lab1.ipynb" in labs
    assert sorted(p.name for p in folder.glob("book/*.ipynb")) == sorted(p.name for p in (ROOT / "book").glob("*.ipynb"))
    assert (folder / "utils" / "text.py").exists() and not (folder / "utils" / "grading").exists()
    assert "pip install --no-deps -e ." in (folder / "postBuild").read_text()  # what Binder runs
    assert not any("solution" in p.as_posix().lower() for p in folder.rglob("*"))
    pins = set((ROOT / "requirements.txt").read_text().splitlines())
    wanted = [line for line in (folder / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert {w.split("==")[0] for w in wanted} >= {"torch", "jupyterlab", "ipykernel"} and set(wanted) <= pins
    readme = (folder / "README.md").read_text()
    assert "pip install -r requirements.txt" in readme and "jupyter lab labs" in readme and "Run All" in readme
    for lab in folder.glob("labs/*/*.ipynb"):  # the released labs, byte for byte
        assert lab.read_bytes() == (ROOT / "labs" / lab.parent.name / lab.name).read_bytes()
    with zipfile.ZipFile(archive) as zipped:
        names = sorted(n.split("/", 1)[1] for n in zipped.namelist())
    assert names == sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_the_edition_holds_no_withheld_block(built):
    folder, _ = built
    kinds = {kind for kind, _ in edition.secrets(ROOT / "solutions")}
    assert {"solution", "answer", "hidden-test"} <= kinds
    assert edition.leaks(folder, ROOT / "solutions") == []


def test_the_scan_finds_a_leak(built, tmp_path):
    """The scan is not blind: a solution notebook, or one hidden test pasted into a chapter, is caught."""
    folder = tmp_path / "edition"
    shutil.copytree(built[0], folder)
    shutil.copyfile(ROOT / "solutions" / "lab1" / "lab1.ipynb", folder / "labs" / "lab1" / "lab1.ipynb")
    found = edition.leaks(folder, ROOT / "solutions")
    assert {line.split(": ")[1] for line in found} >= {"solution", "answer", "hidden-test"}
    shutil.copyfile(built[0] / "labs" / "lab1" / "lab1.ipynb", folder / "labs" / "lab1" / "lab1.ipynb")
    hidden = next(text for kind, text in edition.withheld("lab2", ROOT / "solutions" / "lab2" / "lab2.ipynb")
                  if kind == "hidden-test")
    chapter = folder / "book" / "02-embeddings-as-linear-layers.ipynb"
    notebook = json.loads(chapter.read_text())
    notebook["cells"][-1]["source"] += "\n" + "\n".join("    " + line for line in hidden.splitlines())
    chapter.write_text(json.dumps(notebook))
    assert [line for line in edition.leaks(folder, ROOT / "solutions") if "hidden-test" in line]


@pytest.mark.skipif(not SITE.is_dir(), reason="no _build/html: run `make book` first")
def test_the_website_holds_no_withheld_block_and_links_no_solution():
    assert edition.leaks(SITE, ROOT / "solutions") == []
    for page in SITE.rglob("*.html"):
        links = re.findall(r'href="([^"]*)"', page.read_text(encoding="utf-8", errors="replace"))
        assert not [link for link in links if "solutions/" in link], page
