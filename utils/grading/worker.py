"""The student's process: runs the student's cells and answers the harness's requests, inside the sandbox.

It is started as `python -c <codec source + this file's source> <socket fd> <memory bytes>` in the sandbox (the
course library there has no `grading` package), or as a zygote (`zygote <control fd> <memory bytes> <seccomp hex>`):
one sandboxed process per grading run that runs the lab's setup cells once (trusted code, before any student code)
and forks each submission's worker from that state, in fresh namespaces of its own (see `_new_sandbox`).
Everything here runs in a process the student's code owns: it is plumbing, not a guard. Whatever it answers, the
harness decides the verdicts from data it checks itself.

Requests (JSON header + blobs, see codec): run a cell, get a name's value, call a function or method, get or set
an attribute, isinstance. Replies carry a value, or an error (type, built-in bases, message), and for calls the
arguments the call changed, so the harness can copy the changes back into its own objects.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import inspect
import json
import os
import resource
import select
import shutil
import signal
import socket
import sys
from typing import Any, NoReturn

try:  # imported by the grader's tests; in the sandbox the codec's source comes first in the same text
    from utils.grading.codec import (
        CannotSend, Encoder, decode, describe_exception, fingerprint, receive_message, send_message,
    )
except ImportError:
    pass


class Callback:
    """A function of the harness's tests, passed to the student's code: calling it asks the harness to run it.

    When tensors that require a gradient go in, the result stays connected to them: backpropagating through it
    asks the harness for the gradients of its own copy of the computation (`Remote`)."""

    def __init__(self, worker: Worker, number: int) -> None:
        self.worker, self.number = worker, number

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        torch = sys.modules.get("torch")
        tensors = [a for a in [*args, *kwargs.values()] if torch is not None and isinstance(a, torch.Tensor)
                   and a.requires_grad] if torch is not None and torch.is_grad_enabled() else []
        if tensors:
            return _remote_function(torch).apply(self, args, kwargs, *tensors)
        return self.worker.callback(self.number, args, kwargs, track=False)[0]

    def __repr__(self) -> str:
        return "<function of the grader's test>"


def _remote_function(torch: Any) -> Any:
    """The autograd Function that runs a Callback forward and backward in the harness."""

    class Remote(torch.autograd.Function):
        @staticmethod
        def forward(ctx, callback, args, kwargs, *tensors):
            value, ctx.graph = callback.worker.callback(callback.number, args, kwargs, track=True)
            ctx.callback, ctx.count = callback, len(tensors)
            return value

        @staticmethod
        def backward(ctx, grad):
            if ctx.graph is None:
                return (None, None, None) + (None,) * ctx.count
            grads = ctx.callback.worker.gradient(ctx.graph, grad)
            return (None, None, None, *grads)

    return Remote


class Handles:
    """Objects of the student's that stay in this process; the harness refers to them by number."""

    def __init__(self) -> None:
        self.objects: list[Any] = []
        self.numbers: dict[int, int] = {}
        self.callbacks: dict[int, Callback] = {}
        self.worker: Worker | None = None

    def number(self, value: Any) -> dict[str, Any]:
        """The handle node of `value` (the same number every time for the same object)."""
        number = self.numbers.get(id(value))
        if number is None or self.objects[number] is not value:
            number = len(self.objects)
            self.objects.append(value)
            self.numbers[id(value)] = number
        kind = "class" if isinstance(value, type) else "function" if inspect.isroutine(value) else "object"
        name = getattr(value, "__qualname__", None) if kind != "object" else None
        return {"t": "handle", "id": number, "kind": kind,
                "name": str(name if isinstance(name, str) else type(value).__name__)[:100]}

    def get(self, number: int, node: dict) -> Any:
        """The object behind a handle number (or the callback of a test's function)."""
        if node.get("t") == "callback":
            return self.callbacks.setdefault(number, Callback(self.worker, number))
        return self.objects[number]


def _mutable(value: Any) -> bool:
    """Whether a call may change `value` in place (so it is compared before and after the call)."""
    if isinstance(value, (list, dict, set, bytearray)):
        return True
    module = type(value).__module__
    return module.startswith(("torch", "numpy", "pandas")) or module.startswith("utils.")


class Worker:
    """Serves the harness's requests on one socket (a zygote's worker gets its socket after the fork)."""

    def __init__(self, sock: socket.socket | None) -> None:
        from IPython.core.interactiveshell import InteractiveShell

        self.sock, self.handles = sock, Handles()
        self.handles.worker = self
        self.cache: dict[int, Any] = {}
        #: Fingerprints of cached arguments as the last call left them (id -> (value, fingerprint)).
        self.left: dict[int, tuple[Any, Any]] = {}
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False  # no history thread: a zygote must stay single-threaded to fork
        self.shell = InteractiveShell.instance(config=config)
        self.shell.ask_exit = self.no_exit

    @staticmethod
    def no_exit(*args: Any, **kwargs: Any) -> None:
        """exit() and quit() would end this process quietly after the cell; make them raise, as sys.exit() does."""
        raise SystemExit("exit() and quit() are disabled while grading")

    def encoder(self) -> Encoder:
        """An encoder for replies (objects that are not data become handles)."""
        return Encoder("student", self.handles.number)

    def decode(self, node: Any, blobs: list[bytes]) -> Any:
        """A value the harness sent (trusted: it may hold functions as code)."""
        return decode(node, blobs, "student", self.handles.get, self.cache)

    def serve(self) -> None:
        """Answer requests until the harness closes the connection."""
        while True:
            try:
                header, blobs = receive_message(self.sock)
            except EOFError:
                return
            self.answer(header, blobs)

    def answer(self, header: dict, blobs: list[bytes]) -> None:
        """Answer one request of the harness."""
        encoder = self.encoder()
        try:
            reply = getattr(self, "op_" + header["op"])(header, blobs, encoder)
        except BaseException as error:  # the student's code raised (even SystemExit): report it, keep serving
            encoder, reply = self.encoder(), {"error": describe_exception(error)}
        try:
            send_message(self.sock, reply, encoder.blobs)
        except CannotSend as error:
            send_message(self.sock, {"error": describe_exception(error)}, [])

    def ask(self, header: dict, blobs: list[bytes]) -> Any:
        """Send the harness a callback request and return the value of its reply (answering the harness's own
        requests that come first: the test's function may call the student's code in turn)."""
        send_message(self.sock, header, blobs)
        while True:
            reply, reply_blobs = receive_message(self.sock)
            if "op" in reply:
                self.answer(reply, reply_blobs)
                continue
            if "error" in reply:
                error = reply["error"]
                raise RuntimeError(f"the grader's test function raised {error.get('type')}: {error.get('message')}")
            return reply, self.decode(reply.get("value"), reply_blobs)

    def callback(self, number: int, args: tuple, kwargs: dict, track: bool) -> tuple[Any, int | None]:
        """Call a test's function in the harness: (its value, the number of its graph when `track`)."""
        encoder = self.encoder()
        header = {"callback": number, "args": encoder.encode(list(args)), "kwargs": encoder.encode(dict(kwargs)),
                  "track": track}
        reply, value = self.ask(header, encoder.blobs)
        if track and sys.modules.get("torch") is not None and isinstance(value, sys.modules["torch"].Tensor):
            value = value.detach()  # a fresh result of the autograd Function, connected to the inputs by it
        return value, reply.get("graph")

    def gradient(self, graph: int, grad: Any) -> list[Any]:
        """The gradients of a callback's inputs, computed in the harness from its copy of the computation."""
        encoder = self.encoder()
        _, grads = self.ask({"gradient": graph, "grad": encoder.encode(grad)}, encoder.blobs)
        return grads

    def op_run(self, header: dict, blobs: list[bytes], encoder: Encoder) -> dict:
        """Run a cell's source like Jupyter does."""
        result = self.shell.run_cell(header["source"], store_history=False)
        error = result.error_before_exec or result.error_in_exec
        sys.stdout.flush()
        return {"error": describe_exception(error)} if error is not None else {"ok": True}

    def op_get(self, header: dict, blobs: list[bytes], encoder: Encoder) -> dict:
        """The value of a name the student's cells defined."""
        namespace = self.shell.user_ns
        if header["name"] not in namespace:
            raise NameError(f"name {header['name']!r} is not defined")
        return {"value": encoder.encode(namespace[header["name"]])}

    def op_getattr(self, header: dict, blobs: list[bytes], encoder: Encoder) -> dict:
        return {"value": encoder.encode(getattr(self.decode(header["target"], blobs), header["name"]))}

    def op_setattr(self, header: dict, blobs: list[bytes], encoder: Encoder) -> dict:
        setattr(self.decode(header["target"], blobs), header["name"], self.decode(header["value"], blobs))
        return {"ok": True}

    def op_isinstance(self, header: dict, blobs: list[bytes], encoder: Encoder) -> dict:
        return {"value": bool(isinstance(self.decode(header["value"], blobs), self.decode(header["cls"], blobs)))}

    def op_call(self, header: dict, blobs: list[bytes], encoder: Encoder) -> dict:
        """Call a function with the harness's arguments; report the result and the arguments it changed."""
        target = self.decode(header["target"], blobs)
        args = [self.decode(node, blobs) for node in header["args"]]
        kwargs = {name: self.decode(node, blobs) for name, node in header["kwargs"].items()}
        watched = [(key, value) for key, value in [*enumerate(args), *kwargs.items()] if _mutable(value)]
        before = {key: self.fingerprint_before(value) for key, value in watched}
        torch = sys.modules.get("torch")
        with torch.set_grad_enabled(bool(header.get("grad", True))) if torch else contextlib.nullcontext():
            result = target(*args, **kwargs)
            backward = header.get("backward")
            if backward is not None:
                upstream = self.decode(backward, blobs)
                (result.sum() if upstream is True else result).backward(None if upstream is True else upstream)
        encoder.alias_of = self.aliases(watched)
        reply = {"value": encoder.encode(result), "changed": {}}
        encoder.alias_of = None
        for key, value in watched:
            after = self.fingerprint(value)
            if after != before[key]:
                reply["changed"][str(key)] = encoder.encode(value)
            if any(value is cached for cached in self.cache.values()):
                self.left[id(value)] = (value, after)
        return reply

    def fingerprint_before(self, value: Any) -> Any:
        """A cached argument's fingerprint as the previous call left it (a large table sent once is then digested
        once per call, not twice); a change made between calls shows as a change by this call."""
        left = self.left.get(id(value))
        return left[1] if left is not None and left[0] is value else self.fingerprint(value)

    @staticmethod
    def aliases(arguments: list[tuple[Any, Any]]):
        """A function telling, for a result tensor, which argument tensor's memory it uses (key and name)."""
        torch = sys.modules.get("torch")
        if torch is None:
            return None
        owners = {}
        for key, value in arguments:
            tensors = [(None, value)] if isinstance(value, torch.Tensor) else (
                [*value.named_parameters(), *value.named_buffers()] if isinstance(value, torch.nn.Module) else [])
            for name, tensor in tensors:
                if tensor.layout == torch.strided:
                    owners.setdefault(tensor.untyped_storage().data_ptr(), (str(key), name, tensor))

        def alias_of(tensor: Any) -> dict | None:
            if tensor.layout != torch.strided or tensor.untyped_storage().nbytes() == 0:
                return None
            owner = owners.get(tensor.untyped_storage().data_ptr())
            if owner is None or owner[2].dtype != tensor.dtype:
                return None
            return {"arg": owner[0], "name": owner[1], "offset": tensor.storage_offset(), "stride": list(tensor.stride())}
        return alias_of

    def fingerprint(self, value: Any) -> Any:
        """A comparable snapshot of a value's data (a cheap digest, else its encoding)."""
        quick = fingerprint(value)
        if quick is not None:
            return quick
        encoder = self.encoder()
        try:
            node = encoder.encode(value)
        except CannotSend:
            return (None,)
        return (json.dumps(node), tuple(encoder.blobs))


def main() -> None:
    """Limit memory, then serve the socket given on the command line (or, as a zygote, fork workers)."""
    zygote = sys.argv[1] == "zygote"
    fd, memory = (int(sys.argv[2]), int(sys.argv[3])) if zygote else (int(sys.argv[1]), int(sys.argv[2]))
    program = bytes.fromhex(sys.argv[4]) if zygote else b""
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.argv = ["student"]
    sys.path.insert(0, os.getcwd())
    if zygote:
        serve_forks(socket.socket(fileno=fd), program)
    else:
        Worker(socket.socket(fileno=fd)).serve()


# --- the zygote: the lab's setup once, a fresh sandbox per fork -----------------------------------------------------

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 22, 24, 38, 47
#: The worker's home (the sandbox's HOME; the zygote's copy of it is what each fork starts from).
ZYGOTE_HOME = "/home/student"
LIBC = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    """Raise OSError for a failed libc call."""
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _sandbox_failed(fd: int, error: BaseException) -> NoReturn:
    """A fork that could not become a sandbox: say why on its output and end it (the harness reports the death)."""
    os.write(fd, f"the grader's zygote could not make a sandbox: {error}\n".encode())
    os._exit(70)


def _mount(source: str, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    _check(LIBC.mount(source.encode(), target.encode(), kind.encode() if kind else None, ctypes.c_ulong(flags),
                      data.encode() if data else None), f"mount {target}")


def _mount_points() -> list[str]:
    """This process's mount points, parents first (mountinfo's order)."""
    points = []
    for line in open("/proc/self/mountinfo", encoding="utf-8"):
        point = line.split()[4]
        points.append(point.encode().decode("unicode_escape"))  # mountinfo writes a space as \\040
    return points


def serve_forks(control: socket.socket, program: bytes) -> None:
    """The zygote: run the setup cells the harness sends (trusted), say "ready", then fork a worker for each request
    (a JSON packet with three descriptors: the worker's socket, its output pipe and its status pipe)."""
    worker = Worker(None)
    setup = json.loads(control.recv(1 << 22))["setup"]
    for source in setup:
        result = worker.shell.run_cell(source, store_history=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            control.send(json.dumps({"error": f"{type(error).__name__}: {error}"[:2000]}).encode())
            return
    gc.freeze()  # the collector never walks the setup's objects: a fork shares their pages instead of copying them
    control.send(json.dumps({"ready": True}).encode())
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the first fork of each worker
    while True:
        data, fds, _, _ = socket.recv_fds(control, 1 << 16, 3)
        if not data:
            return
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            os.close(control.detach())
            _new_sandbox(worker, json.loads(data), *fds, program)
        for fd in fds:
            os.close(fd)


def _new_sandbox(worker: Worker, request: dict, sock: int, out: int, status: int, program: bytes) -> None:
    """A fork of the zygote (never returns): new user, mount, PID, IPC, network and UTS namespaces, whose first
    process (PID 1 there) makes the mounts private to this worker and forks the worker itself."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        uid, gid = os.getuid(), os.getgid()
        _check(LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS),
               "unshare")
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
        init = os.fork()
        if init == 0:
            _namespace_init(worker, request, sock, out, status, program)
    except BaseException as error:
        _sandbox_failed(out, error)
    for fd in (sock, out, status):
        os.close(fd)
    os.waitpid(init, 0)
    os._exit(0)


def _namespace_init(worker: Worker, request: dict, sock: int, out: int, status: int, program: bytes) -> None:
    """PID 1 of the worker's namespaces: fresh /proc, home, /dev/shm (and /tmp when it is a mount); then it forks
    the worker, waits for it, writes its wait status into the status pipe and exits (the kernel then kills whatever
    is left in the namespace). When the harness closes the status pipe, it kills the worker first."""
    try:
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _mount("none", "/", None, MS_REC | MS_PRIVATE)
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        points = _mount_points()
        for path in (ZYGOTE_HOME, "/dev/shm", "/tmp"):
            if path in points:
                _cover(path, int(request["disk"]), points)
        pid = os.fork()
        if pid == 0:
            _become_worker(worker, request, sock, out, status, program)
    except BaseException as error:
        _sandbox_failed(out, error)
    os.close(sock)
    os.close(out)
    poll = select.poll()
    child = os.pidfd_open(pid)
    poll.register(child, select.POLLIN)
    poll.register(status, 0)  # POLLERR when the harness closed its end
    while not any(fd == child for fd, _ in poll.poll()):
        os.kill(pid, signal.SIGKILL)
    _, code = os.waitpid(pid, 0)
    with contextlib.suppress(OSError):
        os.write(status, f"{code}\n".encode())
    os._exit(0)


def _cover(path: str, size: int, points: list[str]) -> None:
    """Mount a fresh tmpfs over `path` with a copy of what the zygote has there (what the trusted setup wrote) and
    the read-only mounts below it bound again."""
    below = [p for p in points if p.startswith(path + "/")]
    kept = {p: os.open(p, os.O_PATH) for p in below}
    old = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0755")
    source = f"/proc/self/fd/{old}"
    shutil.copytree(source, path, symlinks=True, dirs_exist_ok=True,
                    ignore=lambda folder, names: [n for n in names
                                                  if path + folder[len(source):] + "/" + n in kept])
    for point, fd in kept.items():
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(point, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(point), exist_ok=True)
            open(point, "a").close()
        _mount(f"/proc/self/fd/{fd}", point, None, MS_BIND | MS_REC)
        os.close(fd)
    os.close(old)


def _become_worker(worker: Worker, request: dict, sock: int, out: int, status: int, program: bytes) -> None:
    """The worker (PID 2): no capabilities, no new privileges, the seccomp filter, the socket its only descriptor
    besides the output; it says hello (the harness learns its pid from the socket's credentials), then serves."""
    try:
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.chdir(ZYGOTE_HOME)
        if request.get("nproc"):
            resource.setrlimit(resource.RLIMIT_NPROC, (request["nproc"], request["nproc"]))
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(sock, 3)
        os.closerange(4, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        for capability in range(64):
            if LIBC.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                break
        LIBC.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
        _check(LIBC.capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()), "capset")
        _check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        if program:
            _seccomp(program)
        connection = socket.socket(fileno=3)
        connection.sendall(b"\0")
    except BaseException as error:
        _sandbox_failed(2, error)
    worker.sock = connection
    try:
        worker.serve()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _seccomp(program: bytes) -> None:
    """Install a BPF seccomp filter (libseccomp's export, eight bytes an instruction) on this process."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _Program(len(program) // 8, ctypes.addressof(buffer))
    _check(LIBC.prctl(PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0), "seccomp")

if __name__ == "__main__":
    main()
