"""The grader's end of the harness fork server (`python -m utils.grading.harness`): one per lab and grading run.

The server runs the lab's setup cells once and forks a child per submission. Jobs go in as JSON lines on its stdin,
events ("started", "done") come back as lines on its stdout, and each child writes its result to a file of the
grader's scratch folder (never reachable from a sandbox). Threads of the grader share one server.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable


class Interrupted(Exception):
    """Grading was stopped from outside (Ctrl-C); the submission's result must not be recorded."""


class ServerError(RuntimeError):
    """The harness server or one of its children failed: a fault of the grader, not of the student."""


class HarnessServer:
    """Start the fork server for one lab (`options`: harness.JobOptions as a dict; `standby`: children kept warm;
    `expected`: at most how many submissions will come);
    `run` grades one submission's answers in a fresh child."""

    def __init__(self, lab_name: str, lab_path: Path, scratch: Path, options: dict[str, Any], standby: int,
                 expected: int) -> None:
        self.scratch = scratch
        self.log = scratch / "harness.log"
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1", MPLBACKEND="Agg",
                   PYTHONHASHSEED="0")
        with open(self.log, "ab") as log:
            argv = [sys.executable, "-m", "utils.grading.harness", lab_name, str(lab_path), json.dumps(options),
                    str(standby), str(expected)]
            self.process = subprocess.Popen(argv,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=scratch,
                                            env=env, start_new_session=True)
        self.lock = threading.Lock()
        self.jobs: dict[int, dict[str, Any]] = {}
        self.numbers = itertools.count()
        first = self.process.stdout.readline()
        event = json.loads(first) if first.strip() else {"event": "failed", "error": self._log_tail()}
        if event.get("event") != "ready":
            self.close()
            raise ServerError(f"the grader could not run the lab's setup cells: {event.get('error')}")
        self.reader = threading.Thread(target=self._read_events, daemon=True)
        self.reader.start()

    def _log_tail(self) -> str:
        """The end of the server's log (for error messages)."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-1500:]
        except OSError:
            return "(no log)"

    def _read_events(self) -> None:
        """Dispatch the server's events to the waiting jobs; when the server dies, fail them all."""
        for line in self.process.stdout:
            event = json.loads(line)
            with self.lock:
                job = self.jobs.get(event.get("job"))
            if job is None:
                continue
            if event["event"] == "started":
                job["pid"] = event["pid"]
            elif event["event"] == "done":
                job["status"] = event["status"]
                job["done"].set()
        with self.lock:
            for job in self.jobs.values():
                job.setdefault("status", None)
                job["done"].set()

    def run(self, answers: dict[int, str | None], limit: float, should_stop: Callable[[], bool]) -> dict[str, Any]:
        """Grade one submission in a forked child; its result (records) or ServerError / Interrupted."""
        number = next(self.numbers)
        result = self.scratch / f"result-{number}.json"
        job = {"done": threading.Event()}
        with self.lock:
            self.jobs[number] = job
            line = json.dumps({"job": number, "answers": {str(k): v for k, v in answers.items()},
                               "result": str(result)})
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
        deadline = time.monotonic() + limit
        try:
            while not job["done"].wait(0.2):
                if should_stop():
                    self._kill(job)
                    raise Interrupted()
                if time.monotonic() > deadline:
                    self._kill(job)
                    raise ServerError(f"grading this submission took longer than {limit:.0f} s in all")
            if job.get("status") is None:
                raise ServerError(f"the harness server stopped: {self._log_tail()}")
            try:
                data = json.loads(result.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise ServerError(f"the harness child ended ({job['status']}) without a result") from None
            if "error" in data:
                raise ServerError(f"the harness failed: {data['error']}")
            return data
        finally:
            result.unlink(missing_ok=True)
            with self.lock:
                self.jobs.pop(number, None)

    def _kill(self, job: dict[str, Any]) -> None:
        """Kill a job's child (its process group: the sandbox goes with it)."""
        for _ in range(50):
            if "pid" in job:
                break
            time.sleep(0.02)
        if "pid" in job:
            try:
                os.killpg(job["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> None:
        """Stop the server and every child it has."""
        with self.lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            self._kill(job)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
