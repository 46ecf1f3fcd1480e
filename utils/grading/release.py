"""Release: turn `solutions/<lab>/<lab>.ipynb` into the student notebook `labs/<lab>/<lab>.ipynb`.

Solutions become `raise NotImplementedError(hint)` stubs, written answers become "YOUR ANSWER HERE", hidden tests
disappear, outputs are cleared, and cells that fail on the unfilled lab get the `raises-exception` tag. The output
depends only on the input (and the Python version JupyterLab would record, which `--check` ignores), byte for
byte, so CI can check that `labs/` is in sync with `solutions/`.
"""

from __future__ import annotations

import copy
import json
import platform
import re
from pathlib import Path
from typing import Any

from utils.hints import HINTS_FILE, read_hints
from utils.grading.notebook import FAILS_UNFILLED, RAISES_EXCEPTION, LabError, cell_source, find_labs, parse_lab

DEFAULT_HINT = "Replace this line with your code"
ANSWER_PLACEHOLDER = "YOUR ANSWER HERE"

_BEGIN_SOLUTION = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*BEGIN SOLUTION[ \t]*$")
_END_SOLUTION = re.compile(r"^[ \t]*#+[ \t]*END SOLUTION[ \t]*$")
_HINT = re.compile(r"^[ \t]*#+[ \t]*HINT:[ \t]*(?P<hint>.*?)[ \t]*$")
_BEGIN_ANSWER = re.compile(r"^[ \t]*(?:=+|#+)[ \t]*BEGIN SOLUTION[ \t]*=*[ \t]*$")
_END_ANSWER = re.compile(r"^[ \t]*(?:=+|#+)[ \t]*END SOLUTION[ \t]*=*[ \t]*$")
_BEGIN_HIDDEN = re.compile(r"^[ \t]*#+[ \t]*BEGIN HIDDEN TESTS[ \t]*$")
_END_HIDDEN = re.compile(r"^[ \t]*#+[ \t]*END HIDDEN TESTS[ \t]*$")


def _blocks(lines: list[str], begin: re.Pattern[str], end: re.Pattern[str], what: str) -> list[tuple[int, int]]:
    """(start, stop) line indices of each marked block, markers included; raises LabError if unbalanced."""
    blocks, start = [], None
    for i, line in enumerate(lines):
        if begin.match(line):
            if start is not None:
                raise LabError(f"line {i + 1}: BEGIN {what} inside another BEGIN {what}.")
            start = i
        elif end.match(line):
            if start is None:
                raise LabError(f"line {i + 1}: END {what} without BEGIN {what}.")
            blocks.append((start, i))
            start = None
    if start is not None:
        raise LabError(f"line {start + 1}: BEGIN {what} is never closed.")
    return blocks


def _stub(indent: str, block: list[str]) -> str:
    """The stub line for one solution block: its first `### HINT:` line, or the default hint."""
    hints = [m.group("hint") for m in map(_HINT.match, block) if m]
    return f"{indent}raise NotImplementedError({json.dumps(hints[0] if hints else DEFAULT_HINT, ensure_ascii=False)})"


def stub_solution(source: str) -> tuple[str, bool]:
    """Replace each solution block by a `raise NotImplementedError(hint)` stub at the block's indentation.

    Returns the new source and whether a stub sits at the top level (so the released cell surely raises).
    A cell without markers is replaced whole, as nbgrader does.
    """
    lines = source.split("\n")
    blocks = _blocks(lines, _BEGIN_SOLUTION, _END_SOLUTION, "SOLUTION")
    if not blocks:
        return _stub("", lines), True
    out, top_level, previous = [], False, 0
    for start, stop in blocks:
        indent = _BEGIN_SOLUTION.match(lines[start]).group("indent")
        out += lines[previous:start] + [_stub(indent, lines[start:stop])]
        top_level |= indent == ""
        previous = stop + 1
    out += lines[previous:]
    return "\n".join(out), top_level


def stub_answer(source: str) -> str:
    """Replace the marked answer (or the whole cell if unmarked) of a written-answer cell by the placeholder."""
    lines = source.split("\n")
    blocks = _blocks(lines, _BEGIN_ANSWER, _END_ANSWER, "SOLUTION")
    if not blocks:
        return ANSWER_PLACEHOLDER
    out, previous = [], 0
    for start, stop in blocks:
        out += lines[previous:start] + [ANSWER_PLACEHOLDER]
        previous = stop + 1
    return "\n".join(out + lines[previous:])


def is_answer_marker(line: str) -> bool:
    """Whether a line of a written answer is a BEGIN/END SOLUTION marker."""
    return bool(_BEGIN_ANSWER.match(line) or _END_ANSWER.match(line))


def remove_hidden_tests(source: str) -> str:
    """Drop the hidden-test blocks (markers included) and the blank lines they leave at the end."""
    lines = source.split("\n")
    keep = [True] * len(lines)
    for start, stop in _blocks(lines, _BEGIN_HIDDEN, _END_HIDDEN, "HIDDEN TESTS"):
        keep[start : stop + 1] = [False] * (stop + 1 - start)
    return "\n".join(line for line, k in zip(lines, keep) if k).rstrip()


def _set_tags(cell: dict[str, Any], raises: bool) -> None:
    """Turn the author's fails-unfilled tag into raises-exception, and add raises-exception when `raises`."""
    tags = list(cell.get("metadata", {}).get("tags", []))
    raises = raises or FAILS_UNFILLED in tags
    tags = [t for t in tags if t != FAILS_UNFILLED]
    if raises and RAISES_EXCEPTION not in tags:
        tags.append(RAISES_EXCEPTION)
    if tags:
        cell["metadata"]["tags"] = tags
    else:
        cell["metadata"].pop("tags", None)


def jupyterlab_metadata(python_version: str | None = None) -> dict[str, Any]:
    """The notebook metadata JupyterLab 4 saves once the course's kernel (ipykernel's python3) has started.

    JupyterLab copies the kernel's spec and its kernel_info `language_info` into the notebook and marks it unsaved
    unless they are already equal, so a lab released with exactly these opens clean. The Python version is part of
    language_info: that of the Python running the release (the course environment's) unless given.
    """
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelspec import KERNEL_NAME, get_kernel_dict

    spec = get_kernel_dict()
    language_info = copy.deepcopy(IPythonKernel.language_info)
    language_info["version"] = python_version or platform.python_version()
    return {"kernelspec": {"display_name": spec["display_name"], "language": spec["language"], "name": KERNEL_NAME},
            "language_info": language_info}


def saved_python_version(text: str | None) -> str | None:
    """The Python version recorded in a released notebook's language_info (None if absent or unreadable)."""
    try:
        return json.loads(text)["metadata"]["language_info"]["version"] if text else None
    except (ValueError, KeyError, TypeError):
        return None


def withheld(name: str, path: Path) -> list[tuple[str, str]]:
    """What the release keeps from students, block by block: (kind, text) with kind solution, answer or hidden-test.

    The student edition and the website are scanned for each of these (scripts/student_edition.py, tests).
    """
    lab, pieces = parse_lab(name, path), []
    for cell, kind in zip(lab.notebook["cells"], lab.kinds):
        source = cell_source(cell)
        lines = source.split("\n")
        if kind == "solution":
            blocks = _blocks(lines, _BEGIN_SOLUTION, _END_SOLUTION, "SOLUTION")
            texts = ["\n".join(l for l in lines[a + 1 : b] if not _HINT.match(l)) for a, b in blocks] or [source]
            pieces += [("solution", text) for text in texts]
        elif kind == "written":
            blocks = _blocks(lines, _BEGIN_ANSWER, _END_ANSWER, "SOLUTION")
            pieces += [("answer", text) for text in ["\n".join(lines[a + 1 : b]) for a, b in blocks] or [source]]
        elif kind == "test":
            blocks = _blocks(lines, _BEGIN_HIDDEN, _END_HIDDEN, "HIDDEN TESTS")
            pieces += [("hidden-test", "\n".join(lines[a + 1 : b])) for a, b in blocks]
    return [(kind, text) for kind, text in pieces if text.strip()]


def release_notebook(name: str, path: Path, python_version: str | None = None) -> dict[str, Any]:
    """The student version of one solution notebook, as a notebook dict."""
    lab = parse_lab(name, path)
    notebook = copy.deepcopy(lab.notebook)
    for cell, kind in zip(notebook["cells"], lab.kinds):
        cell.setdefault("metadata", {})
        cell["metadata"].pop("execution", None)
        source, raises = cell_source(cell), False
        try:
            if kind == "solution":
                source, raises = stub_solution(source)
            elif kind == "written":
                source = stub_answer(source)
            elif kind == "test":
                source, raises = remove_hidden_tests(source), True
        except LabError as error:
            raise LabError(f"{path}: cell {cell.get('id')!r}: {error}") from None
        cell["source"] = source
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        _set_tags(cell, raises)
    notebook.setdefault("metadata", {})["course"] = {"lab": name}
    notebook["metadata"].update(jupyterlab_metadata(python_version))
    return notebook


def notebook_text(notebook: dict[str, Any]) -> str:
    """Serialise a notebook the way nbformat.write does (sorted keys, indent 1, source as lines), deterministically."""
    import nbformat

    return nbformat.writes(nbformat.from_dict(notebook)) + "\n"


def released_hints(folder: Path) -> str | None:
    """The text of a lab's released hints.json (checked and normalised), or None when the lab has no hints."""
    source = folder / HINTS_FILE
    if not source.exists():
        return None
    try:
        hints = read_hints(source)
    except ValueError as error:
        raise LabError(str(error)) from None
    return json.dumps(hints, indent=1, ensure_ascii=False) + "\n"


def release_all(solutions: Path, labs: Path, names: list[str] | None = None, check: bool = False) -> list[str]:
    """Release every lab (or `names`) from `solutions` into `labs`.

    With `check`, write nothing and return the problems: released files that are missing, stale (differ from
    a fresh release) or orphaned (no solution). Without it, write the files that changed and return their paths.
    """
    available = find_labs(solutions)
    unknown = sorted(set(names or []) - set(available))
    if unknown:
        raise LabError(f"no such lab in {solutions}: {', '.join(unknown)} (labs: {', '.join(available) or 'none'})")
    selected = {n: p for n, p in available.items() if names is None or n in names}
    problems, written = [], []
    for name, path in selected.items():
        hints = released_hints(path.parent)
        hints_target = labs / name / HINTS_FILE
        hints_current = hints_target.read_text(encoding="utf-8") if hints_target.exists() else None
        if check and hints != hints_current:
            problems.append(f"{'stale' if hints_current and hints else 'missing' if hints else 'orphan'}: "
                            f"{hints_target} differs from {path.parent / HINTS_FILE} (run `make release`)")
        elif not check and hints != hints_current:
            if hints is None:
                hints_target.unlink()
            else:
                hints_target.parent.mkdir(parents=True, exist_ok=True)
                hints_target.write_text(hints, encoding="utf-8")
            written.append(str(hints_target))
        target = labs / name / f"{name}.ipynb"
        current = target.read_text(encoding="utf-8") if target.exists() else None
        # --check accepts a release made with another Python version (its only trace is language_info.version).
        text = notebook_text(release_notebook(name, path, saved_python_version(current) if check else None))
        if check:
            if current is None:
                problems.append(f"missing: {target} (run `make release`)")
            elif current != text:
                problems.append(f"stale: {target} differs from a fresh release of {path} (run `make release`)")
        elif current != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
            written.append(str(target))
    if check and names is None:
        for name, path in find_labs(labs).items():
            if name not in available:
                problems.append(f"orphan: {path} has no solution notebook in {solutions}")
    return problems if check else written
