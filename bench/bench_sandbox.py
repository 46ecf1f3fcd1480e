"""Benchmark: what the grader's sandbox costs per submission, start to teardown.

For a Python program that does nothing and one that imports torch (what a lab's worker does first), the time from
start to the end of `kill()` (every process gone, cgroups removed) of: a bare subprocess, a `Sandbox` without
bubblewrap (`grade --no-sandbox`), and the real `Sandbox`. The difference between the last two is the sandbox's
cost per submission (goal: at most 0.5 s). Run it from the repository root with `make bench` or
`python bench/bench_sandbox.py --help`; on a loaded machine the torch rows vary by seconds, the `pass` rows less.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.grading.sandbox import Limits, Sandbox, check_sandbox, prepare_library  # noqa: E402

PROGRAMS = {"python -c pass": "pass", "python -c 'import torch'": "import torch"}


def seconds(run) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def in_sandbox(code: str, library: Path, enabled: bool) -> None:
    """Start `code` in a fresh Sandbox, wait for it, tear the sandbox down."""
    with Sandbox(Limits(), library, enabled=enabled) as box:
        box.start([sys.executable, "-c", code]).wait()


def start_and_kill(library: Path, enabled: bool) -> tuple[float, float]:
    """(seconds from start() until Python runs in the sandbox, seconds of kill() once torch is loaded)."""
    with Sandbox(Limits(), library, enabled=enabled) as box:
        start = time.perf_counter()
        box.start([sys.executable, "-c", "print('up', flush=True); import torch; print('ready', flush=True); "
                                         "import time; time.sleep(600)"])
        while "up" not in box.output():
            time.sleep(0.002)
        started = time.perf_counter() - start
        while "ready" not in box.output():
            time.sleep(0.01)
        start = time.perf_counter()
        box.kill()
        return started, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per cell; the median is shown (default: 5)")
    args = parser.parse_args()
    print(f"sandbox: {check_sandbox()}")
    with tempfile.TemporaryDirectory() as folder:
        library = prepare_library(Path(folder))
        in_sandbox("pass", library, True)  # first use makes the runtime's mirrors (once per machine)
        rows = []
        for name, code in PROGRAMS.items():
            ways = {"bare subprocess": lambda code=code: subprocess.run([sys.executable, "-c", code], check=True),
                    "Sandbox(enabled=False)": lambda code=code: in_sandbox(code, library, False),
                    "Sandbox (bubblewrap)": lambda code=code: in_sandbox(code, library, True)}
            times = {way: statistics.median(seconds(run) for _ in range(args.repeats)) for way, run in ways.items()}
            rows.append({"program": name, **{f"{way} (s)": round(t, 3) for way, t in times.items()},
                         "sandbox cost (s)": round(times["Sandbox (bubblewrap)"] - times["Sandbox(enabled=False)"], 3)})
        print(pd.DataFrame(rows).to_string(index=False))
        phases = []
        for enabled in (False, True):
            runs = [start_and_kill(library, enabled) for _ in range(args.repeats)]
            phases.append({"": "Sandbox (bubblewrap)" if enabled else "Sandbox(enabled=False)",
                           "start() until Python runs (s)": round(statistics.median(r[0] for r in runs), 3),
                           "kill() with torch loaded (s)": round(statistics.median(r[1] for r in runs), 3)})
        print(pd.DataFrame(phases).to_string(index=False))


if __name__ == "__main__":
    main()
