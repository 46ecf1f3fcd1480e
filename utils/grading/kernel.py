"""A Jupyter kernel for one submission: scrubbed environment, private working directory, memory limit,
per-cell timeout, and death detection.

Pass/fail never depends on what the student's code prints: `execute` returns the status of the kernel
protocol's execute_reply, plus whether a grader-chosen marker appeared in the cell's stdout.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import zmq
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

#: The kernel's launcher (limits memory and output before ipykernel starts), run with `python -c`.
LAUNCHER = (Path(__file__).parent / "kernel_launcher.py").read_text(encoding="utf-8")

#: Environment variables passed through to the kernel when set (OpenBLAS needs them on some processors).
PASS_THROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

Status = Literal["ok", "error", "timeout", "died"]


class Interrupted(Exception):
    """Grading was stopped from outside (Ctrl-C); the submission's result must not be recorded."""


@dataclass
class Outcome:
    """How one execution ended. `marker_seen` says the grader's marker was printed (the cell ran to its end)."""

    status: Status
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0
    marker_seen: bool = False
    #: For a dead kernel: how it died ("exit code 1", "signal 11 (SIGSEGV)").
    death: str = ""


def kernel_env(home: Path, shared: Path) -> dict[str, str]:
    """A minimal environment: nothing of the grader's (no paths to the course repository, no tokens)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "IPYTHONDIR": str(home / ".ipython"),
        "MPLCONFIGDIR": str(shared / "matplotlib"),
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "TQDM_DISABLE": "1",
    }
    env.update({k: os.environ[k] for k in PASS_THROUGH if k in os.environ})
    return env


def write_kernelspec(folder: Path, memory: int, output_limit: int) -> Path:
    """Write the grader's kernelspec (the launcher above) into `folder`/grader; returns `folder`."""
    spec = {
        "argv": [sys.executable, "-c", LAUNCHER, str(memory), str(output_limit), "-f", "{connection_file}"],
        "display_name": "Python 3 (grader)",
        "language": "python",
        "interrupt_mode": "signal",
    }
    (folder / "grader").mkdir(parents=True, exist_ok=True)
    (folder / "grader" / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return folder


def _describe_exit(code: int | None) -> str:
    """'exit code 1' or 'signal 11 (SIGSEGV)' for a dead process."""
    if code is None:
        return "unknown cause"
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class Kernel:
    """One running kernel in `workdir`, restartable; use as a context manager so it is always killed."""

    def __init__(self, workdir: Path, specs: Path, env: dict[str, str], log: Path,
                 should_stop: Callable[[], bool] = lambda: False, startup_timeout: float = 60.0) -> None:
        self.workdir, self.specs, self.env, self.log = workdir, specs, env, log
        self.should_stop, self.startup_timeout = should_stop, startup_timeout
        self.manager: KernelManager | None = None
        self.client = None

    def __enter__(self) -> "Kernel":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def start(self) -> None:
        """Start a fresh kernel process and wait until it answers."""
        manager = KernelManager(kernel_name="grader", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self.specs)]))
        manager.connection_file = str(self.log.with_suffix(".json"))
        with open(self.log, "ab") as log:
            manager.start_kernel(env=self.env, cwd=str(self.workdir), stdout=log, stderr=log)
        self.manager = manager
        self.client = manager.client()
        self.client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        deadline = time.monotonic() + self.startup_timeout
        while True:  # replies to requests sent before the kernel was up arrive late: any kernel_info_reply will do
            self.client.kernel_info()
            try:
                if self.client.shell_channel.get_msg(timeout=0.5)["msg_type"] == "kernel_info_reply":
                    break
            except queue.Empty:
                pass
            if self.should_stop():
                self.kill()
                raise Interrupted()
            if not manager.is_alive() or time.monotonic() > deadline:
                code = self._exit_code()
                self.kill()
                raise RuntimeError(f"the grading kernel did not start ({_describe_exit(code)}); see {self.log}")
        time.sleep(0.05)
        while self.client.shell_channel.msg_ready():  # drop the other replies to kernel_info
            self.client.shell_channel.get_msg(timeout=0)
        while self.client.iopub_channel.msg_ready():  # drop the startup status messages
            self.client.iopub_channel.get_msg(timeout=0)

    def restart(self) -> None:
        """Kill the kernel and start a fresh one (state is lost: the caller replays what it needs)."""
        self.kill()
        self.start()

    def _exit_code(self) -> int | None:
        """The kernel process's exit status, or None while it runs."""
        process = getattr(self.manager.provisioner, "process", None) if self.manager else None
        return process.poll() if process is not None else None

    def kill(self) -> None:
        """Kill the kernel's whole process group (children the student spawned too) and close the channels."""
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.manager is not None:
            pid = getattr(self.manager.provisioner, "pid", None)
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.manager.shutdown_kernel(now=True)
            except Exception:  # the process is gone already; cleanup of ports and files is best effort
                pass
            self.manager = None

    def execute(self, code: str, timeout: float, silent: bool = False, marker: str | None = None) -> Outcome:
        """Run `code`; return how it ended. Output is never stored, only scanned for `marker`."""
        client, start = self.client, time.monotonic()
        msg_id = client.execute(code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=False)
        poller = zmq.Poller()
        poller.register(client.iopub_channel.socket, zmq.POLLIN)
        poller.register(client.shell_channel.socket, zmq.POLLIN)
        deadline, reply, reply_time, idle, tail, seen = start + timeout, None, 0.0, False, "", False
        while not (reply is not None and (idle or time.monotonic() > reply_time + 2.0)):
            if self.should_stop():
                raise Interrupted()
            now = time.monotonic()
            if now > deadline:
                return Outcome("timeout", seconds=now - start)
            ready = dict(poller.poll(int(min(0.2, deadline - now) * 1000) + 1))
            if not ready:
                if not self.manager.is_alive():
                    return Outcome("died", seconds=time.monotonic() - start, death=_describe_exit(self._exit_code()))
                continue
            if client.shell_channel.socket in ready:
                msg = client.shell_channel.get_msg(timeout=0)
                if msg["parent_header"].get("msg_id") == msg_id:
                    reply, reply_time = msg["content"], time.monotonic()
            if client.iopub_channel.socket in ready:
                msg = client.iopub_channel.get_msg(timeout=0)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "status" and content.get("execution_state") == "idle":
                    idle = True
                elif kind == "stream" and marker and content.get("name") == "stdout":
                    text = tail + content.get("text", "")
                    seen = seen or marker in text
                    tail = text[-len(marker):]
        seconds = time.monotonic() - start
        if reply.get("status") == "ok":
            return Outcome("ok", seconds=seconds, marker_seen=seen)
        ename = str(reply.get("ename") or f"execution {reply.get('status', 'failed')}")
        return Outcome("error", ename, str(reply.get("evalue", "")), seconds, seen)
