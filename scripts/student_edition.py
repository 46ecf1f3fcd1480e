"""The student edition: what students get instead of the course's sources (`make student`).

Writes OUT/embeddings-course-student/ and OUT/embeddings-course-student.zip: the released labs, the chapters of
_toc.yml as notebooks a student runs (plain Jupyter markdown, the numbers the last book build computed, see
scripts/edition/myst_to_jupyter.py), `utils` without the grader as an installable package (version ranges from
pyproject.toml), the data packages, a bibliography and a README for students (scripts/edition/README.md). Every
notebook opens with the environment check (utils/setup_check.py), which in Colab or on a hub first installs the
edition from `repository.url` of _config.yml. Nothing comes from solutions/; before writing the zip every file is
scanned for every block the release withholds and for what students must not be sent to (`solutions/`, `make`),
and the build fails if one is found.

    python scripts/student_edition.py [--out _build/student] [--executed _build/jupyter_execute]
"""

from __future__ import annotations

import argparse
import ast
import html
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.grading.notebook import find_labs  # noqa: E402
from scripts.edition.myst_to_jupyter import Citations, convert, format_glued, glued_values  # noqa: E402, F401
from utils.grading.release import (  # noqa: E402
    jupyterlab_metadata, notebook_text, release_all, release_notebook, withheld)
from utils.setup_check import READY  # noqa: E402

TEMPLATES = ROOT / "scripts" / "edition"

NAME = "embeddings-course-student"
#: What the labs and chapters import at run time (the edition's package dependencies, as pyproject.toml's ranges;
#: its requirements.txt pins them as the course is tested, for Binder); JupyterLab is the `lab` extra.
RUNTIME = ["torch", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "gensim", "matplotlib", "plotly", "tqdm",
           "ipywidgets", "ipykernel"]
PINNED = [*RUNTIME, "jupyterlab"]
#: Whole lines of withheld code or text shorter than this may occur in student material by coincidence.
LINE_MINIMUM = 40
#: What students must never be sent to: the course's sources, their build tool, the solutions.
FORBIDDEN = re.compile(r"solutions/|\bmake (?:lab|install|test|student|release|grade|book|bench|pdf|format)\b|"
                       r"`make`|course repository|requirements-dev")
#: The line a lab or chapter calls its environment check with (utils/setup_check.py).
CHECK_IMPORT = "from utils.setup_check import check_course"
#: The environment guard of the labs before they called check_course (replaced by the check in the edition).
LEGACY_GUARD = re.compile(r'import importlib\.util\n\nassert all\(importlib\.util\.find_spec\(name\) '
                          r'for name in \([^)]*\)\), \((?:\s*"[^"\n]*")+\)\n')
#: A benchmark script a chapter names (the edition ships it), and the course's command that runs them all.
BENCH_SCRIPT = re.compile(r"bench/bench_\w+\.py")
BENCH_COMMAND = "`make bench`"


def pinned(names: list[str], requirements: Path) -> list[str]:
    """The lines of `requirements` that pin `names`, in that order; raises if one is not pinned there."""
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==\S+", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(0)
    missing = [n for n in names if n not in pins]
    if missing:
        raise SystemExit(f"error: {', '.join(missing)} not pinned in {requirements}")
    return [pins[n] for n in names]


def readable_text(path: Path) -> str:
    """The text a person could read in a file: a notebook's sources and outputs, a page without its tags."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return ""  # images, fonts: nothing to read a solution from
    if path.suffix == ".ipynb":
        cells = json.loads(text).get("cells", [])
        parts = []
        for cell in cells:
            parts.append("".join(cell.get("source", "")))
            for output in cell.get("outputs", []):
                parts.append("".join(output.get("text", "")))
                parts += ["".join(v) if isinstance(v, list) else str(v) for v in output.get("data", {}).values()]
        return "\n".join(parts)
    if path.suffix in (".html", ".htm"):
        return html.unescape(re.sub(r"<[^>]+>", "", text))
    return text


def _squeeze(text: str) -> str:
    """Whitespace runs to one space: a block still matches after re-indentation or re-wrapping."""
    return " ".join(text.split())


def secrets(solutions: Path) -> list[tuple[str, str]]:
    """(kind, text) of every withheld block of every lab, and of each of its lines long enough to be telling,
    whitespace-squeezed. A line the released lab shows anyway (a visible test repeated in a hidden one, a hint) is no
    secret.
    """
    found = set()
    for name, path in find_labs(solutions).items():
        released = _squeeze("\n".join("".join(cell["source"]) for cell in release_notebook(name, path)["cells"]))
        for kind, piece in withheld(name, path):
            found.add((kind, _squeeze(piece)))
            found |= {(f"{kind} line", _squeeze(line)) for line in piece.splitlines()
                      if len(line.strip()) >= LINE_MINIMUM and _squeeze(line) not in released}
    return sorted(found)


def leaks(folder: Path, solutions: Path) -> list[str]:
    """'file: kind: text' for every withheld block or telling line found in a readable file under `folder`.

    Single lines of solution code are looked for in the labs only: the chapters and utils hold the course's own
    reference code, which a lab's solution may share a line with (a whole solution block is looked for everywhere).
    """
    pieces, found = secrets(solutions), []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text, is_lab = _squeeze(readable_text(path)), is_lab_file(path)
        found += [f"{path.relative_to(folder)}: {kind}: {piece[:80]}" for kind, piece in pieces
                  if piece in text and (kind != "solution line" or is_lab)]
    return found


def is_lab_file(path: Path) -> bool:
    """Whether a file is (a page of) a student lab: labN.ipynb, labN.html."""
    return re.fullmatch(r"lab\d+", path.stem) is not None


def toc_chapters(root: Path) -> list[Path]:
    """The chapter notebooks of the book, in _toc.yml's order (pages that are not notebooks are left out)."""
    def files(node: object) -> list[str]:
        if isinstance(node, dict):
            return ([node["file"]] if "file" in node else []) + [f for value in node.values() for f in files(value)]
        return [f for item in node for f in files(item)] if isinstance(node, list) else []

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    return [root / f"{name}.ipynb" for name in files(toc) if (root / f"{name}.ipynb").exists()]


def bootstrap(repository: str, branch: str) -> str:
    """The code that opens every notebook of the edition: install the edition where it is missing, then check it.

    The notebook alone is all Colab has, so the address the edition installs from is written into it: the
    repository of _config.yml (where its Colab and JupyterHub buttons take notebooks from). Without one, a missing
    course is an error that says how to install it.
    """
    if repository:
        missing = (f'    %pip install -q "git+{repository}@{branch}"\n'
                   f"    importlib.invalidate_caches()\n    {CHECK_IMPORT}\n")
    else:
        missing = ('    raise ModuleNotFoundError(\n        "This notebook needs the course\'s library: install the '
                   'student edition "\n        "as its README says."\n    ) from None\n')
    return ("# The course's library and data: installed where they are missing (Colab, a hub),\n# then checked.\n"
            + ("import importlib\n\n" if repository else "")
            + f"try:\n    {CHECK_IMPORT}\nexcept ModuleNotFoundError:\n{missing}check_course()\n")


def with_bootstrap(notebook: dict, code: str) -> dict:
    """The notebook with `code` as its environment check: in place of the cell's own check, else a first code cell."""
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
        if CHECK_IMPORT in source or LEGACY_GUARD.search(source):
            source = LEGACY_GUARD.sub("", source)
            source = re.sub(rf"^{re.escape(CHECK_IMPORT)}\n\n?(check_course\(\)\n)?", "", source, flags=re.M)
            cell["source"] = code + "\n" + source.lstrip("\n")
            return notebook
    first = next(i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code")
    notebook["cells"].insert(first, {"cell_type": "code", "id": "course-setup", "metadata": {}, "execution_count": None,
                                     "outputs": [], "source": code})
    return notebook


def edition_chapter(path: Path, glue_file: Path, citations: Citations, shipped: dict[str, str], code: str) -> dict:
    """A chapter as the edition ships it: plain markdown with the book build's numbers, the same code, opening clean.

    `shipped` maps a page name (`03-bag-of-words-classifier`, `labs`) to the edition file a `{doc}` link goes to.
    """
    glued = glued_values(glue_file) if glue_file.exists() else {}

    def link(target: str, title: str) -> str:
        name = target.rsplit("/", 1)[-1]
        if name == "labs":  # the labs page: in the edition, its README says the same
            return f"[{title or 'the README'}](../README.md)"
        return f"[{title or name}]({shipped[name]})" if name in shipped else (title or name)

    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            try:
                cell["source"] = convert(source, glued, citations, link)
            except KeyError as error:
                raise SystemExit(f"error: {path.name}: {error.args[0]}: build the book first (make book), whose "
                                 f"executed chapters ({glue_file.parent}) give the edition its numbers") from None
            cell["source"] = run_benchmark_directly(cell["source"])
        else:
            cell["source"] = source.replace("from myst_nb import glue", "from utils.glue import glue")
            cell.update(outputs=[], execution_count=None)
        cell["metadata"].pop("mystnb", None)
    notebook["metadata"] = jupyterlab_metadata()
    return with_bootstrap(notebook, code)


def run_benchmark_directly(text: str) -> str:
    """Markdown whose `make bench` (the course's command, which the edition lacks) runs the script named before it."""
    def script(match: re.Match) -> str:
        named = BENCH_SCRIPT.findall(text[:match.start()])
        return f"`python {named[-1]}`" if named else match.group(0)

    return re.sub(re.escape(BENCH_COMMAND), script, text)


def student_text(path: Path) -> str:
    """What a student reads in a file: a notebook's or page's text; of Python code, the strings it shows (its
    messages), not its docstrings and comments, which are the maintainers'."""
    if path.suffix != ".py":
        return readable_text(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    documented = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return "\n".join(node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                     and isinstance(node.value, str) and id(node) not in documented)


def forbidden(folder: Path) -> list[str]:
    """'file: text' for everything in the edition that sends a student to the course's sources or solutions."""
    return [f"{path.relative_to(folder)}: {match.group(0)}" for path in sorted(folder.rglob("*")) if path.is_file()
            for match in FORBIDDEN.finditer(student_text(path))]


def package_metadata(root: Path, version: str) -> str:
    """The edition's pyproject.toml: the course library's run-time ranges for what the notebooks import."""
    import tomllib

    ranges = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    wanted = [r for r in ranges if re.split(r"[<>=!~ \[]", r)[0].lower().replace("_", "-") in RUNTIME]
    jupyterlab = next(p for p in pinned(["jupyterlab"], root / "requirements.txt"))
    major_minor = ".".join(jupyterlab.split("==")[1].split(".")[:2])
    return "\n".join([
        '[build-system]', 'requires = ["setuptools>=61"]', 'build-backend = "setuptools.build_meta"', '',
        '[project]', f'name = "{NAME}"', f'version = "{version}"',
        'description = "The library the labs and chapters of the word-embeddings course import."',
        'requires-python = ">=3.11,<3.14"', 'license = { text = "MIT" }',
        "dependencies = [", *[f'    "{r}",' for r in wanted], "]", '',
        '[project.optional-dependencies]', f'lab = ["jupyterlab>={major_minor},<5"]', '',
        '[tool.setuptools]', 'packages = ["utils"]', '',
        '# JupyterLab without its question about Jupyter news on first start', '[tool.setuptools.data-files]',
        '"etc/jupyter/labconfig" = ["jupyter/default_setting_overrides.json"]', ''])


def source_date(root: Path) -> tuple[int, ...]:
    """The date of the sources the edition is made from (the last commit), for the zip's entries."""
    import time

    try:
        stamp = int(subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=root, capture_output=True, text=True,
                                   check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        stamp = int(time.time())
    return time.gmtime(stamp)[:6]


def build(root: Path, out: Path, executed: Path | None = None,
          repository: tuple[str, str] | None = None) -> tuple[Path, Path]:
    """Write the edition folder and zip under `out`; returns both paths.

    `executed`: the book build's executed notebooks (default _build/jupyter_execute), whose glued values the
    chapters' text shows. `repository`: (address, branch) the notebooks install the edition from where it is
    missing; default: _config.yml's repository.
    """
    stale = release_all(root / "solutions", root / "labs", check=True)
    if stale:
        raise SystemExit("error: labs/ is not a fresh release of solutions/ (run `make release`):\n" + "\n".join(stale))
    executed = executed or root / "_build" / "jupyter_execute"
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")).get("repository") or {}
    address, branch = repository or ((config.get("url") or "").strip(), config.get("branch") or "main")
    code = bootstrap(address, branch)
    folder, archive = out / NAME, out / f"{NAME}.zip"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for lab in sorted(p for p in (root / "labs").glob("*/*") if p.is_file()):
        (folder / "labs" / lab.parent.name).mkdir(parents=True, exist_ok=True)
        if lab.suffix == ".ipynb":
            notebook = with_bootstrap(json.loads(lab.read_text(encoding="utf-8")), code)
            (folder / "labs" / lab.parent.name / lab.name).write_text(notebook_text(notebook), encoding="utf-8")
        else:
            shutil.copyfile(lab, folder / "labs" / lab.parent.name / lab.name)
    (folder / "book").mkdir()  # the site's paths (book/01-....ipynb), so its launch buttons find the notebooks
    chapters = toc_chapters(root)
    shipped = {c.stem: c.name for c in chapters} | {"bibliography": "bibliography.md"}
    citations = Citations(root / "book" / "references.bib")
    for chapter in chapters:
        glue_file = executed / "book" / f"{chapter.stem}.glue.json"
        notebook = edition_chapter(chapter, glue_file, citations, shipped, code)
        (folder / "book" / chapter.name).write_text(notebook_text(notebook), encoding="utf-8")
    (folder / "book" / "bibliography.md").write_text(citations.page(
        "The papers, books and data sets the chapters cite (as author and year)."), encoding="utf-8")
    for script in sorted({s for c in chapters for s in BENCH_SCRIPT.findall(c.read_text(encoding="utf-8"))}):
        (folder / "bench").mkdir(exist_ok=True)
        shutil.copyfile(root / script, folder / script)
    shutil.copytree(root / "utils", folder / "utils",
                    ignore=shutil.ignore_patterns("grading", "__pycache__", "*.pyc"))
    requirements = pinned(PINNED, root / "requirements.txt")
    (folder / "requirements.txt").write_text(
        "# What the labs and chapters need, pinned as the course is tested (Binder installs these).\n"
        + "\n".join(requirements) + "\n", encoding="utf-8")
    shutil.copyfile(root / "requirements-data.txt", folder / "requirements-data.txt")
    shutil.copyfile(root / "LICENSE", folder / "LICENSE")
    shutil.copyfile(TEMPLATES / "postBuild", folder / "postBuild")
    (folder / "postBuild").chmod(0o755)
    (folder / "jupyter").mkdir()
    shutil.copyfile(TEMPLATES / "jupyter" / "default_setting_overrides.json",
                    folder / "jupyter" / "default_setting_overrides.json")
    version = re.search(r'^version = "([^"]+)"', (root / "pyproject.toml").read_text(encoding="utf-8"), re.M).group(1)
    (folder / "pyproject.toml").write_text(package_metadata(root, version), encoding="utf-8")
    torch = next(r for r in (folder / "pyproject.toml").read_text().splitlines() if r.strip().startswith('"torch'))
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    readme = readme.replace("{name}", NAME).replace("{torch}", torch.strip().strip('",')).replace("{ready}", READY)
    (folder / "README.md").write_text(readme, encoding="utf-8")
    found = leaks(folder, root / "solutions") + forbidden(folder)
    if found:
        shutil.rmtree(folder)
        raise SystemExit("error: the student edition would contain withheld material or send students to the "
                         "course's sources:\n" + "\n".join(found))
    when = source_date(root)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{NAME}/{path.relative_to(folder).as_posix()}", when)
            mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, mode << 16
            zipped.writestr(info, path.read_bytes())
    return folder, archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--executed", type=Path, default=ROOT / "_build" / "jupyter_execute",
                        help="the book build's executed notebooks, for the chapters' numbers (default: %(default)s)")
    args = parser.parse_args()
    folder, archive = build(ROOT, args.out, args.executed)
    files = [p for p in folder.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {folder} ({len(files)} files, {size / 1e6:.1f} MB) and {archive} "
          f"({archive.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
