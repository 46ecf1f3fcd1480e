"""A zygote: one sandboxed process per grading run that runs the lab's setup cells once and forks every
submission's worker from that state, so that no submission pays again for starting Python, importing torch and
running the setup (the cost that dominated grading).

The zygote runs in a bubblewrap sandbox like any other (it only lacks bwrap's seccomp filter and its ban on
nested user namespaces, which its forks need), and only trusted code runs in it: the lab's setup cells from
solutions/. Each fork (worker.serve_forks) makes new user, mount, PID, IPC, network and UTS namespaces; the first
process there (PID 1) mounts a fresh /proc and fresh tmpfs homes (/home/student, /dev/shm, and /tmp when it is a
mount), copies the zygote's home into them, and forks the worker, which drops every capability, sets
no_new_privs, installs the seccomp filter (`seccomp_filter(forked=True)`, which also refuses new user namespaces)
and closes every descriptor but its socket and output. The harness learns the worker's pid from the socket's
credentials (SO_PASSCRED: the kernel's word, translated into the harness's PID namespace), checks it descends
from the zygote, and moves it into a cgroup of its own: the same limits, kill-all and teardown as a sandbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
from pathlib import Path

from utils.grading.sandbox import (
    Limits, Sandbox, _Cgroups, _Output, cgroup_folders, describe_exit, seccomp_filter,
)

#: Seconds a fork may take to say hello before the harness gives up on the zygote for this submission.
HELLO_TIMEOUT = 30.0
#: Processes the zygote's own sandbox may hold: the zygote, and two small processes per live worker.
ZYGOTE_PROCESSES = 512


class ZygoteFailure(RuntimeError):
    """The zygote could not start, run the setup, or fork a working worker; the caller starts a sandbox itself."""


class ForkedSandbox:
    """A worker forked by the zygote, seen like a Sandbox: alive, exit_description, output, kill."""

    def __init__(self, limits: Limits, output: int, status: int, cgroups: _Cgroups | None) -> None:
        self.limits, self.cgroups = limits, cgroups
        self._output = _Output(output, limits.output)
        self._status_fd: int | None = status
        self._status: int | None = None
        self._pidfd: int | None = None
        self._oom_kills = 0

    def attach(self, pid: int, pidfd: int) -> None:
        """The worker's pid (in the grader's PID namespace) is known: limits apply from now on."""
        self._pidfd = pidfd
        if self.cgroups is not None:
            self.cgroups.add(pid)

    def _read_status(self, timeout: float) -> bool:
        """Read the worker's wait status once its namespace init writes it; False while it still runs."""
        if self._status_fd is None:
            return True
        if not select.select([self._status_fd], [], [], timeout)[0]:
            return False
        data = os.read(self._status_fd, 64)
        self._status = int(data) if data.strip().isdigit() else signal.SIGKILL  # no status: its init was killed
        os.close(self._status_fd)
        self._status_fd = None
        return True

    def alive(self) -> bool:
        return not self._read_status(0)

    def exit_description(self) -> str:
        if not self._read_status(0):
            return "still running"
        code = os.waitstatus_to_exitcode(self._status)
        if code < 0 and (self._oom_kills or (self.cgroups is not None and self.cgroups.oom_kills())):
            return "killed: memory limit"
        return describe_exit(code)

    def output(self) -> str:
        return self._output.text()

    def kill(self) -> None:
        """Kill the worker (its namespace goes with it) and everything in its cgroup, and wait until they are gone."""
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        if self.cgroups is not None:
            self.cgroups.kill_all()
        self._read_status(10.0)
        if self._status_fd is not None:  # closing it makes the namespace's init kill the worker
            os.close(self._status_fd)
            self._status_fd = None
        if self.cgroups is not None:
            self._oom_kills = self.cgroups.release()
            self.cgroups = None
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self._output.close()

    def __enter__(self) -> "ForkedSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


class Zygote:
    """The zygote's sandbox and the control socket its forks are requested on (shared by the harness's children)."""

    def __init__(self, argv: list[str], env: dict[str, str], limits: Limits, library: Path) -> None:
        """Start the zygote: `argv` + [control fd, memory, seccomp program as hex] in a nested-capable sandbox."""
        self.limits = limits
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sandbox = Sandbox(Limits(memory=limits.memory, processes=ZYGOTE_PROCESSES, disk=limits.disk,
                                      output=limits.output), library, nested=True)
        program = seccomp_filter(forked=True) or b""
        try:
            self.sandbox.start([*argv, "zygote", str(theirs.fileno()), str(limits.memory), program.hex()],
                               pass_fds=(theirs.fileno(),), env=env)
        except BaseException:
            self.sandbox.kill()
            raise
        finally:
            theirs.close()
        self.control = mine
        self.pid = None

    def setup(self, sources: list[str]) -> None:
        """Send the lab's setup cells to the zygote, which runs them while the caller goes on (see `ready`)."""
        try:
            self.control.send(json.dumps({"setup": sources}).encode())
        except OSError:
            pass  # `ready` reports it

    def ready(self, timeout: float) -> None:
        """Wait until the zygote has run the setup cells (ZygoteFailure with the reason if they failed there)."""
        try:
            self.control.settimeout(timeout)
            reply = json.loads(self.control.recv(1 << 16) or b'{"error": "it ended"}')
        except (OSError, ValueError) as error:
            reply = {"error": str(error) or type(error).__name__}
        finally:
            self.control.settimeout(None)
        init = self.sandbox._init_pidfd is not None and self._init_pid()
        children = Path(f"/proc/{init}/task/{init}/children").read_text().split() if init else []
        if "error" in reply or len(children) != 1:
            self.stop()
            raise ZygoteFailure(f"the zygote could not run the lab's setup: {reply.get('error', 'no zygote process')}"
                                f"; {self.sandbox.output()[-500:]}")
        self.pid = int(children[0])

    def _init_pid(self) -> int | None:
        """The host pid of the zygote sandbox's PID-namespace init (from its pidfd)."""
        fdinfo = Path(f"/proc/self/fdinfo/{self.sandbox._init_pidfd}").read_text()
        return next((int(line.split()[1]) for line in fdinfo.splitlines() if line.startswith("Pid:")), None)

    def alive(self) -> bool:
        return self.pid is not None and self.sandbox.alive()

    def fork(self, limits: Limits) -> tuple[ForkedSandbox, socket.socket]:
        """A fresh worker in fresh namespaces, in a cgroup of its own: (its sandbox, the harness's socket to it)."""
        mine, theirs = socket.socketpair()
        mine.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        out_r, out_w = os.pipe()
        status_r, status_w = os.pipe()
        cgroups = _Cgroups(limits) if cgroup_folders() else None
        child = ForkedSandbox(limits, out_r, status_r, cgroups)
        nproc = 0 if "pids" in cgroup_folders() else limits.processes + 1
        try:
            try:
                socket.send_fds(self.control, [json.dumps({"disk": limits.disk, "nproc": nproc}).encode()],
                                [theirs.fileno(), out_w, status_w])
            except OSError as error:
                raise ZygoteFailure(f"the zygote is gone ({error})") from None
            finally:
                theirs.close()
                os.close(out_w)
                os.close(status_w)
            pid = self._hello(mine)
            pidfd = os.pidfd_open(pid)
            if not self._descends(pid):
                os.close(pidfd)
                raise ZygoteFailure(f"process {pid} said hello but is not a fork of the zygote")
            child.attach(pid, pidfd)
        except BaseException:
            mine.close()
            child.kill()
            raise
        return child, mine

    @staticmethod
    def _hello(sock: socket.socket) -> int:
        """The worker's first byte, with its pid from the kernel's credentials."""
        sock.settimeout(HELLO_TIMEOUT)
        try:
            data, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(12))
        except OSError as error:
            raise ZygoteFailure(f"the zygote's fork did not answer ({error})") from None
        finally:
            sock.settimeout(None)
        for level, kind, payload in ancillary:
            if data == b"\0" and level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                return struct.unpack("iII", payload[:12])[0]
        raise ZygoteFailure("the zygote's fork ended before it started")

    def _descends(self, pid: int) -> bool:
        """Whether `pid` is a worker of this zygote: worker -> namespace init -> fork -> zygote."""
        for _ in range(3):
            pid = Sandbox._parent_of(pid)
            if pid is None:
                return False
        return pid == self.pid

    def stop(self) -> None:
        """Kill the zygote and every fork it made."""
        with contextlib.suppress(OSError):
            self.control.close()
        self.sandbox.kill()

