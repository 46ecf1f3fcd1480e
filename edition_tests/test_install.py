"""The student edition as a student gets it: built, unzipped, installed into a fresh venv exactly as its README says,
and every lab and the first and the last chapter run there (`make test-edition`, after the book build, whose numbers
the chapters show).

The venv is a hosted notebook service's (Colab's): it has PyTorch and other versions of numpy, pandas,
scikit-learn and matplotlib than the course pins, and the edition must run with them. Before the README's install,
lab 1 of an edition whose repository is a local git repository opens there as in Colab: its first cell installs the
edition and its data. Timings go to _build/edition-timings.txt.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("student_edition", ROOT / "scripts" / "student_edition.py")
edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(edition)
#: What a hosted service ships instead of the course's pins: the first release of each pinned minor version.
OTHER_VERSIONS = ["numpy", "pandas", "scikit-learn", "matplotlib"]


def other_version(pin: str) -> str:
    """'numpy==2.4.6' -> 'numpy==2.4.0': in the edition's ranges, not the course's pin."""
    name, version = pin.split("==")
    other = ".".join(version.split(".")[:2]) + ".0"
    assert other != version, f"{pin}: pick another version for the test"
    return f"{name}=={other}"


def run(command: str, cwd: Path, env: dict[str, str]) -> float:
    """Run one shell command (a README line); its seconds. Fails with its output if it fails."""
    start = time.monotonic()
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return time.monotonic() - start


def execute(notebook: Path, venv: Path, env: dict[str, str]) -> tuple[float, dict]:
    """Run All on a notebook with the venv's kernel; (seconds, the executed notebook). Tagged stubs may fail."""
    start = time.monotonic()
    done = subprocess.run([str(venv / "bin" / "jupyter"), "execute", "--inplace", "--timeout=900", notebook.name],
                          cwd=notebook.parent, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{notebook}: {done.stderr[-3000:]}"
    return time.monotonic() - start, json.loads(notebook.read_text())


def outputs(notebook: dict, cell: int = 0) -> str:
    """The text the n-th code cell printed."""
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"][cell]
    return "".join("".join(o.get("text", "")) for o in code["outputs"])


def readme_commands(readme: str) -> list[str]:
    """The install block's lines, with the machine's package sources instead of PyTorch's CPU index: the torch build
    the course's own environment has (a CPU build where the course was installed with one)."""
    block = re.search(r"## 2\. Install.*?```bash\n(.*?)```", readme, re.S).group(1)
    torch = f'"torch=={importlib.metadata.version("torch")}"'
    return [re.sub(r'"torch[^"]*" --index-url https://download\.pytorch\.org/whl/cpu', torch, line)
            .replace("python3", sys.executable, 1) for line in block.strip().splitlines()]


@pytest.mark.skipif(not (ROOT / "_build" / "jupyter_execute" / "book").is_dir(),
                    reason="the edition's chapters show the book build's numbers: run `make book` first")
def test_a_student_installs_and_runs_the_edition(tmp_path):
    timings = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "JUPYTER"))}
    env.update(OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")  # HOME kept: pip's cache
    repository = tmp_path / "repository"  # what Colab installs the edition from (a git repository, as on GitHub)
    colab, _ = edition.build(ROOT, tmp_path / "colab", repository=(repository.as_uri(), "main"))
    shutil.copytree(colab, repository)
    for git in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "The student edition"]):
        subprocess.run(["git", "-c", "user.name=course", "-c", "user.email=course@example.org", *git], cwd=repository,
                       check=True)
    _, archive = edition.build(ROOT, tmp_path / "edition")
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(tmp_path / "student")
    folder = tmp_path / "student" / edition.NAME
    assert edition.forbidden(folder) == [] and edition.leaks(folder, ROOT / "solutions") == []
    commands = readme_commands((folder / "README.md").read_text())
    venv = folder / ".venv"
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"

    # A hosted service's environment: PyTorch, other versions of the usual libraries, a kernel.
    seconds = run(commands[0], folder, env) + run(commands[1], folder, env)
    timings.append(("venv and PyTorch (README lines 1-2)", seconds))
    assert importlib.metadata.version("torch") in commands[1]
    pins = edition.pinned(OTHER_VERSIONS, ROOT / "requirements.txt")
    others = [other_version(pin) for pin in pins]
    run(f"{venv}/bin/pip install -q {' '.join(others)} ipykernel nbclient", folder, env)

    # Colab: lab 1 alone, whose first cell installs the edition and its data.
    (tmp_path / "colab-lab").mkdir()
    lab1 = shutil.copy(colab / "labs" / "lab1" / "lab1.ipynb", tmp_path / "colab-lab")
    seconds, notebook = execute(Path(lab1), venv, env)
    timings.append(("lab1 in Colab, installing the edition and its data", seconds))
    assert "Installed the course's data" in outputs(notebook) and edition.READY in outputs(notebook)

    # The README's install into that environment, then every lab and the first and last chapter, two at a time.
    timings.append(("README lines 3-4", run(commands[2], folder, env) + run(commands[3], folder, env)))
    chapters = edition.toc_chapters(ROOT)
    notebooks = [*sorted(folder.glob("labs/*/*.ipynb")), folder / "book" / chapters[0].name,
                 folder / "book" / chapters[-1].name]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda nb: execute(nb, venv, env), notebooks))
    for path, (seconds, notebook) in zip(notebooks, results):
        timings.append((f"Run All {path.relative_to(folder)}", seconds))
        assert edition.READY in outputs(notebook), path
        failed = [c for c in notebook["cells"] if any(o["output_type"] == "error" for o in c.get("outputs", []))]
        assert all("raises-exception" in c["metadata"].get("tags", []) for c in failed), path
        if "labs" in path.parts:  # the unsolved stubs fail, and only they
            assert failed and all("NotImplementedError" in json.dumps(c["outputs"]) for c in failed), path

    news = subprocess.run([f"{venv}/bin/python", "-c", "from jupyterlab_server.settings_utils import _get_overrides; "
                           "print(_get_overrides('none')[0]['@jupyterlab/apputils-extension:notification'])"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "'fetchNews': 'false'" in news.stdout, news.stderr  # JupyterLab does not ask about Jupyter news

    versions = subprocess.run([f"{venv}/bin/pip", "list", "--format=json"], capture_output=True, text=True, env=env)
    installed = {p["name"].lower(): p["version"] for p in json.loads(versions.stdout)}
    assert [f"{pin.split('==')[0]}=={installed[pin.split('==')[0]]}" for pin in pins] == others  # not upgraded
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    timings.append((f"venv size {size / 1e9:.2f} GB; versions " + ", ".join(others) + f", torch {installed['torch']}",
                    0.0))
    report = "\n".join(f"{seconds:7.1f} s  {what}" for what, seconds in timings)
    load = open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "edition-timings.txt").write_text(f"{report}\nload {' '.join(load)}\n")
    print(report)
