"""The trusted side of grading: the lab's test cells run here, the student's code in a sandboxed worker process.

For each submission, the harness starts the student's process (`worker`, inside the sandbox), sends it the lab's
setup cells and the student's answer cells, and runs every test cell itself. A test reaches the names that the
reference solution defines through proxies: calling one sends the arguments to the student's process as data and
brings the result back as data (`codec`). So hidden tests, expected values and verdicts never enter the student's
process, and nothing the student's code does there (patched comparisons, hooks, threads, forged replies) can change
how a test runs here: a test passes when its code runs to its end in this process.

`serve` is a small fork server: it runs the lab's first setup cells once, then forks a fresh child per
submission, so every submission starts from the same trusted state without paying for the setup again. The student's
side does the same: a zygote (utils.grading.zygote) runs the setup cells once in a sandbox, and each child's worker is
forked from it into fresh namespaces of its own. Children are forked ahead of their job and get their worker while
the previous submission is graded: no student code has run in it yet, so warming it up early is safe.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import gc
import io
import itertools
import json
import os
import re
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from utils.grading import codec
from utils.grading.notebook import Lab, cell_source, parse_lab
from utils.grading.release import stub_solution
from utils.grading.sandbox import HOME, Limits, Sandbox
from utils.grading.zygote import Zygote, ZygoteFailure

Status = Literal["ok", "error", "timeout", "died"]

#: The worker's program: the codec, then the worker (both need only the standard library to start).
WORKER_SOURCE = (Path(codec.__file__).read_text(encoding="utf-8") + "\n"
                 + re.sub(r"(?m)^from __future__ import annotations$", "",
                          (Path(__file__).parent / "worker.py").read_text(encoding="utf-8")))


#: Most callback results kept for a backward pass through them (the oldest are dropped).
MAX_GRAPHS = 64


class StudentTimeout(BaseException):
    """The student's code ran past the time limit (a BaseException: a test's `except Exception` cannot hide it)."""


class StudentDied(BaseException):
    """The student's process ended (crash, os._exit, killed for memory) or broke the connection."""

    def __init__(self, death: str) -> None:
        super().__init__(death)
        self.death = death


class StudentError(Exception):
    """An exception raised by the student's code, re-raised here as data: type name and message only."""

    student_type = "Exception"


_ERROR_CLASSES: dict[type, type] = {}


def student_exception(info: Any) -> BaseException:
    """A local exception for the student's one: a subclass of its nearest built-in class and of StudentError."""
    if not isinstance(info, dict):
        return StudentDied("your code sent the grader a malformed reply")
    bases = info.get("bases") if isinstance(info.get("bases"), list) else []
    base = next((getattr(builtins, n) for n in bases if isinstance(n, str) and isinstance(getattr(builtins, n, None), type)
                 and issubclass(getattr(builtins, n), Exception)), Exception)
    cls = _ERROR_CLASSES.get(base)
    if cls is None:
        cls = _ERROR_CLASSES[base] = type(f"Student{base.__name__}", (StudentError, base), {})
    message = info.get("message") if isinstance(info.get("message"), str) else ""
    error = cls(message[: codec.MAX_MESSAGE_TEXT])
    name = info.get("type")
    error.student_type = name[:100] if isinstance(name, str) and name.isidentifier() else base.__name__
    if base is KeyError:  # KeyError's str() adds quotes; keep the student's text as it was
        error.args = (message[: codec.MAX_MESSAGE_TEXT],)
    return error


class StudentProxy:
    """An object of the student's (a function, class or instance) that stays in the student's process.

    Calling it, reading or setting an attribute, and isinstance against it are requests to that process; the
    answers are data. Nothing else is forwarded: comparisons, hashing and truth use this proxy's own identity.
    """

    __slots__ = ("_link", "_id", "_kind", "_name")

    def __init__(self, link: Link, number: int, kind: str, name: str) -> None:
        for slot, value in zip(self.__slots__, (link, number, kind, name)):
            object.__setattr__(self, slot, value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._link.request({"op": "getattr", "target": {"t": "handle", "id": self._id}, "name": name})

    def __setattr__(self, name: str, value: Any) -> None:
        self._link.send_value({"op": "setattr", "target": {"t": "handle", "id": self._id}, "name": name}, "value", value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._link.call(self, args, kwargs)

    def __instancecheck__(self, value: Any) -> bool:
        return bool(self._link.send_value({"op": "isinstance", "cls": {"t": "handle", "id": self._id}}, "value", value))

    def __remote_backward__(self, args: tuple, kwargs: dict, upstream: Any) -> Any:
        """Call and backpropagate in the student's process (see utils.checks.backward_through)."""
        return self._link.call(self, args, kwargs, backward=True if upstream is None else upstream)

    def __repr__(self) -> str:
        return f"<{self._kind} {self._name} of your code>"


class Link:
    """The harness's end of the connection to the student's process: requests with deadlines, values as data."""

    def __init__(self, sock: socket.socket, death: Callable[[], str]) -> None:
        self.sock, self.death = sock, death
        self.deadline = float("inf")
        self.proxies: dict[int, StudentProxy] = {}
        #: Large arguments already sent, by id: (the object, its number in the student's process, fingerprint).
        self.sent: dict[int, tuple[Any, int, Any]] = {}
        self.numbers = itertools.count()
        #: Functions of the tests passed to the student's code: they stay here and are called back by number.
        self.callbacks: list[Any] = []
        #: Results of callbacks the student's code may backpropagate through: number -> (inputs, output).
        self.graphs: dict[int, tuple[list[Any], Any]] = {}

    def wait(self) -> None:
        """Before each read: set the socket's timeout to what is left of the deadline, or give up."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise StudentTimeout()
        self.sock.settimeout(min(left, 3600.0))

    def exchange(self, header: dict, blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        """Send a request and read its reply (StudentTimeout, StudentDied on failure)."""
        try:
            codec.send_message(self.sock, header, blobs)
            while True:
                reply, reply_blobs = codec.receive_message(self.sock, self.wait, limit=codec.MAX_MESSAGE)
                if "callback" not in reply and "gradient" not in reply:
                    return reply, reply_blobs
                answer = self.encoder()
                codec.send_message(self.sock, self.run_callback(reply, reply_blobs, answer), answer.blobs)
        except (socket.timeout, TimeoutError):
            raise StudentTimeout() from None
        except codec.ProtocolError as error:
            raise StudentDied(f"your code sent the grader something that is not a valid reply ({error})") from None
        except (EOFError, OSError):
            raise StudentDied(self.death()) from None

    def run_callback(self, header: dict, blobs: list[bytes], encoder: codec.Encoder) -> dict[str, Any]:
        """Run a test's function here on the arguments the student's code sent (or backpropagate through its
        result): the reply is data, and a failure is reported to the student's code as its exception."""
        torch = sys.modules.get("torch")
        if "gradient" in header:
            graph = self.graphs.pop(header["gradient"], None) if type(header["gradient"]) is int else None
            if graph is None or torch is None:
                raise codec.ProtocolError("a gradient request for an unknown callback result")
            upstream = codec.decode(header.get("grad"), blobs, "harness", self.proxy)
            inputs, output = graph
            try:
                grads = torch.autograd.grad(output, inputs, upstream, allow_unused=True)
            except Exception as error:
                return {"error": codec.describe_exception(error)}
            return {"value": encoder.encode(list(grads))}
        number = header["callback"]
        if type(number) is not int or not 0 <= number < len(self.callbacks):
            raise codec.ProtocolError("a call of an unknown callback")
        args = codec.decode(header.get("args"), blobs, "harness", self.proxy)
        kwargs = codec.decode(header.get("kwargs"), blobs, "harness", self.proxy)
        if type(args) is not list or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
            raise codec.ProtocolError("a callback without a list of arguments")
        track = header.get("track") is True and torch is not None
        try:
            with torch.enable_grad() if track else contextlib.nullcontext():
                value = self.callbacks[number](*args, **kwargs)
        except (StudentTimeout, StudentDied):
            raise
        except Exception as error:
            return {"error": codec.describe_exception(error)}
        try:
            reply = {"value": encoder.encode(value)}
        except codec.CannotSend as error:
            return {"error": codec.describe_exception(error)}
        if track and isinstance(value, torch.Tensor) and value.requires_grad:
            inputs = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor) and a.requires_grad]
            reply["graph"] = next(self.numbers)
            self.graphs[reply["graph"]] = (inputs, value)
            while len(self.graphs) > MAX_GRAPHS:  # the oldest go: a student's loop of calls cannot fill our memory
                self.graphs.pop(next(iter(self.graphs)))
        return reply

    def callback_of(self, value: Any) -> int:
        """The callback number of a test's function (the same number every time for the same function)."""
        for number, function in enumerate(self.callbacks):
            if function is value:
                return number
        self.callbacks.append(value)
        return len(self.callbacks) - 1

    def proxy(self, number: int, node: dict) -> StudentProxy:
        """The proxy of a handle (one per handle, so identity holds on this side)."""
        proxy = self.proxies.get(number)
        if proxy is None:
            kind = node.get("kind") if node.get("kind") in ("function", "class", "object") else "object"
            name = node.get("name") if isinstance(node.get("name"), str) else "object"
            proxy = self.proxies[number] = StudentProxy(self, number, kind, name[:100])
        return proxy

    def handle_of(self, value: Any) -> int | None:
        """The handle number of a proxy of this link's student process."""
        return value._id if isinstance(value, StudentProxy) and value._link is self else None

    def encoder(self) -> codec.Encoder:
        encoder = codec.Encoder("harness", self.handle_of)
        encoder.callback_of = self.callback_of
        return encoder

    def reply(self, header: dict, blobs: list[bytes], arguments: Callable[[Any], Any] | None = None) -> Any:
        """The value of a reply, or the student's exception raised here."""
        if "error" in header:
            raise student_exception(header["error"])
        try:
            return codec.decode(header.get("value"), blobs, "harness", self.proxy, arguments=arguments)
        except codec.ProtocolError as error:
            raise StudentDied(f"your code sent the grader something that is not a valid reply ({error})") from None

    def request(self, header: dict) -> Any:
        """A request without values to send."""
        return self.reply(*self.exchange(header, []))

    def send_value(self, header: dict, key: str, value: Any) -> Any:
        """A request carrying one value."""
        encoder = self.encoder()
        header[key] = encoder.encode(value)
        return self.reply(*self.exchange(header, encoder.blobs))

    def call(self, target: Any, args: tuple, kwargs: dict, backward: Any = None) -> Any:
        """Call a student's function; copy the changes it made to the arguments back into them."""
        torch = sys.modules.get("torch")
        encoder = self.encoder()
        header = {"op": "call", "target": encoder.encode(target), "args": [self.argument(encoder, a) for a in args],
                  "kwargs": {str(k): self.argument(encoder, v) for k, v in kwargs.items()},
                  "grad": torch is None or torch.is_grad_enabled(),
                  "backward": None if backward is None else encoder.encode(backward)}
        reply, blobs = self.exchange(header, encoder.blobs)
        value = self.reply(reply, blobs, lambda alias: argument_tensor(args, kwargs, alias))
        changed = reply.get("changed")
        if isinstance(changed, dict):
            for key, node in changed.items():
                original = args[int(key)] if key.isdigit() and int(key) < len(args) else kwargs.get(key)
                try:
                    copy_back(original, codec.decode(node, blobs, "harness", self.proxy))
                except codec.ProtocolError as error:
                    raise StudentDied(f"your code sent the grader something that is not a valid reply ({error})") from None
                self.sent.pop(id(original), None)  # the student's copy and ours now differ in identity of parts
        return value

    def argument(self, encoder: codec.Encoder, value: Any) -> Any:
        """The node of a call argument; a large one already sent unchanged is referred to by number."""
        size = getattr(value, "nbytes", None) or (len(value) if isinstance(value, (list, tuple, dict, set)) else 0)
        if size < 256 or self.handle_of(value) is not None:
            return encoder.encode(value)
        summary = codec.fingerprint(value)
        if summary is None:
            return encoder.encode(value)
        known = self.sent.get(id(value))
        if known is not None and known[0] is value and known[2] == summary:
            return {"t": "cached", "id": known[1]}
        number = next(self.numbers)
        self.sent[id(value)] = (value, number, summary)
        return {"t": "cache", "id": number, "v": encoder.encode(value)}


def argument_tensor(args: tuple, kwargs: dict, alias: dict) -> Any:
    """The tensor of a call's arguments that an alias names: ("0", None) an argument, ("0", "weight") a parameter."""
    torch = sys.modules.get("torch")
    key, name = alias.get("arg"), alias.get("name")
    if torch is None or not isinstance(key, str):
        return None
    value = args[int(key)] if key.isdigit() and int(key) < len(args) else kwargs.get(key)
    if name is None:
        return value if isinstance(value, torch.Tensor) else None
    if isinstance(value, torch.nn.Module) and isinstance(name, str):
        return dict([*value.named_parameters(), *value.named_buffers()]).get(name)
    return None


def copy_back(original: Any, new: Any) -> None:
    """Make `original` (the test's object) hold what the student's code changed its copy into, for the changes a
    call may have as its documented effect only: the parameters, buffers, gradients, attributes and mode of an
    nn.Module, and the gradient of a tensor (backpropagation). Anything else a call does to its arguments (a dict
    emptied, a list, array or tensor rewritten, a course object edited) stays in the student's own copy, so it
    cannot change a fixture that a test compares with after the call."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if isinstance(original, torch.nn.Module) and isinstance(new, torch.nn.Module):
        _copy_module(original, new, torch)
    elif isinstance(original, torch.Tensor) and isinstance(new, torch.Tensor) and original.is_leaf:
        original.grad = new.grad if new.grad is None or new.grad.shape == original.shape else None


def _copy_module(original: Any, new: Any, torch: Any) -> None:
    """Copy a module's state (see copy_back) into the test's module, keeping its tensors' identity."""
    original.training = new.training
    for name, value in vars(new).items():
        if not name.startswith("_"):
            vars(original)[name] = value
    for field in ("_parameters", "_buffers"):
        mine, theirs = getattr(original, field), getattr(new, field)
        for name, tensor in theirs.items():
            if isinstance(mine.get(name), torch.Tensor) and isinstance(tensor, torch.Tensor):
                _copy_tensor(mine[name], tensor, torch)
            else:
                mine[name] = tensor
    for name, child in new._modules.items():
        if isinstance(original._modules.get(name), torch.nn.Module) and child is not None:
            _copy_module(original._modules[name], child, torch)
        else:
            original._modules[name] = child


def _copy_tensor(original: Any, new: Any, torch: Any) -> None:
    """A module's parameter or buffer: values, gradient and whether it requires one."""
    with torch.no_grad():
        if original.shape == new.shape and original.dtype == new.dtype:
            original.copy_(new)
        else:
            original.data = new.detach()
    if original.is_leaf:
        if original.requires_grad != new.requires_grad and (new.is_floating_point() or new.is_complex()):
            original.requires_grad_(new.requires_grad)
        original.grad = new.grad if new.grad is None or new.grad.shape == original.shape else None


@dataclass
class Outcome:
    """How one cell ended."""

    status: Status
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0
    death: str = ""


def bound_names(source: str) -> set[str]:
    """Names a cell binds at its top level by definition or assignment (imports excluded: tests import their own)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [item.optional_vars for item in node.items if item.optional_vars] if isinstance(node, ast.With)
                else [node.target])
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def worker_env() -> dict[str, str]:
    """What the worker adds to the sandbox's own environment (sandbox.sandbox_env, which the sandbox lays it over)."""
    return {"IPYTHONDIR": f"{HOME}/.ipython", "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class JobOptions:
    """What a child needs to grade one submission (a subset of grader.Options, plus where the library is)."""

    timeout: float
    memory: int
    output_limit: int
    max_restarts: int
    processes: int
    disk: int
    sandbox: bool
    library: str


def job_limits(options: JobOptions) -> Limits:
    """The sandbox limits of one submission."""
    return Limits(memory=options.memory, processes=options.processes, disk=options.disk, output=options.output_limit)


class StudentProcess:
    """The sandboxed worker of one submission; restartable (state is lost, the caller replays)."""

    def __init__(self, options: JobOptions, zygote: Zygote | None = None) -> None:
        self.options, self.zygote = options, zygote
        self.sandbox: Any = None
        self.link: Link | None = None
        self.description = ""

    def start(self) -> bool:
        """Start a fresh worker in a fresh sandbox: forked from the zygote (True: the lab's setup cells have run in
        it), or, without a zygote or when it fails, started from nothing (False)."""
        if self.zygote is not None:
            try:
                self.sandbox, sock = self.zygote.fork(job_limits(self.options))
            except ZygoteFailure as error:
                print(f"grading without the zygote for this worker: {error}", file=sys.stderr)
            else:
                self.link = Link(sock, self.death)
                return True
        mine, theirs = socket.socketpair()
        self.sandbox = Sandbox(job_limits(self.options), Path(self.options.library), enabled=self.options.sandbox)
        self.sandbox.__enter__()
        try:
            self.sandbox.start([sys.executable, "-c", WORKER_SOURCE, str(theirs.fileno()), str(self.options.memory)],
                               pass_fds=(theirs.fileno(),), env=worker_env())
        finally:
            theirs.close()
        self.link = Link(mine, self.death)
        return False

    def death(self) -> str:
        """How the worker ended (waits a moment for it to exit)."""
        for _ in range(50):
            if self.sandbox is None or not self.sandbox.alive():
                return self.sandbox.exit_description() if self.sandbox is not None else "not started"
            time.sleep(0.02)
        return "it stopped answering the grader: your code broke its connection to the grader"

    def stop(self) -> None:
        """Kill the worker and everything it started."""
        if self.link is not None:
            with contextlib.suppress(OSError):
                self.link.sock.close()
            self.link = None
        if self.sandbox is not None:
            self.sandbox.__exit__(None, None, None)
            self.sandbox = None

    def output(self) -> str:
        """What the student's code printed (capped), for the grader's log."""
        return self.sandbox.output() if self.sandbox is not None else ""


class _TooManyRestarts(Exception):
    """The student's process had to be restarted more often than allowed."""


class _Sink(io.TextIOBase):
    """Where the harness's own prints go while it runs tests (kept short, never shown to anyone)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


def run_in_harness(source: str, label: str, namespace: dict[str, Any]) -> Outcome:
    """Execute trusted cell code in this process; an error says why the cell failed, never its source."""
    start = time.monotonic()
    try:
        with contextlib.redirect_stdout(_Sink()), contextlib.redirect_stderr(_Sink()):
            exec(compile(transform(source), label, "exec"), namespace)
    except StudentTimeout:
        return Outcome("timeout", seconds=time.monotonic() - start)
    except StudentDied as error:
        return Outcome("died", seconds=time.monotonic() - start, death=error.death)
    except StudentError as error:
        return Outcome("error", error.student_type, str(error.args[0]) if error.args else "", time.monotonic() - start)
    except Exception as error:
        return Outcome("error", type(error).__name__, str(error)[: codec.MAX_MESSAGE_TEXT], time.monotonic() - start)
    return Outcome("ok", seconds=time.monotonic() - start)


def transform(source: str) -> str:
    """IPython syntax (magics, !commands) as plain Python; the harness has no magics, so they become no-ops."""
    if not re.search(r"(?m)^\s*[%!]", source):
        return source
    return re.sub(r"(?m)^(\s*)[%!].*$", r"\1pass", source)


def new_namespace() -> dict[str, Any]:
    """A fresh namespace for the lab's trusted cells (display() is a no-op here)."""
    return {"__name__": "__main__", "__builtins__": builtins, "display": lambda *args, **kwargs: None}


class LabRun:
    """Grades one submission: the worker runs setup and answer cells, this process runs the tests."""

    def __init__(self, lab: Lab, options: JobOptions, namespace: dict[str, Any], prefix: int,
                 zygote: Zygote | None = None) -> None:
        self.lab, self.options = lab, options
        self.namespace, self.prefix = namespace, prefix
        self.answers: dict[int, str | None] = {}
        self.student = StudentProcess(options, zygote)
        #: Cells that succeeded after the setup (replayed after a restart), and the setup cells a worker not forked
        #: from the zygote must run first.
        self.replay: list[str] = []
        self.setup = setup_sources(lab, prefix)
        self.restarts = 0
        self.answer_names: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.stopped = False

    def run_worker(self, source: str, keep: bool = True) -> Outcome:
        """Run a cell in the student's process; keep it for replay if it succeeded (and `keep`: setup cells are
        replayed from self.setup)."""
        link, start = self.student.link, time.monotonic()
        link.deadline = start + self.options.timeout
        try:
            reply, _ = link.exchange({"op": "run", "source": source}, [])
        except StudentTimeout:
            return Outcome("timeout", seconds=time.monotonic() - start)
        except StudentDied as error:
            return Outcome("died", seconds=time.monotonic() - start, death=error.death)
        seconds = time.monotonic() - start
        if "error" in reply:
            error = student_exception(reply["error"])
            if isinstance(error, StudentDied):
                return Outcome("died", seconds=seconds, death=error.death)
            return Outcome("error", error.student_type, str(error.args[0]) if error.args else "", seconds)
        if keep:
            self.replay.append(source)
        return Outcome("ok", seconds=seconds)

    def run_here(self, source: str, label: str) -> Outcome:
        """Run a trusted cell in the harness, with the student's names fetched fresh."""
        link = self.student.link
        link.deadline = time.monotonic() + self.options.timeout
        try:
            for name in self.answer_names:
                try:
                    self.namespace[name] = link.request({"op": "get", "name": name})
                except StudentError:
                    self.namespace.pop(name, None)
        except StudentTimeout:
            return Outcome("timeout")
        except StudentDied as error:
            return Outcome("died", death=error.death)
        return run_in_harness(source, label, self.namespace)

    def recover(self) -> None:
        """Restart the student's process and replay the cells that succeeded (dropping any that fail now)."""
        while True:
            self.restarts += 1
            if self.restarts > self.options.max_restarts:
                raise _TooManyRestarts()
            self.student.stop()
            setup = [] if self.student.start() else self.setup  # forked from the zygote: the setup has run
            replay, self.replay = self.replay, []
            for position, (source, keep) in enumerate([(s, False) for s in setup] + [(s, True) for s in replay]):
                outcome = self.run_worker(source, keep)
                if outcome.status in ("timeout", "died"):
                    self.replay += replay[max(0, position + 1 - len(setup)):]
                    break
            else:
                return

    def warm(self) -> None:
        """Start the student's process with the lab's setup cells run in it (by the zygote, or here): no answer is
        needed for that yet."""
        if self.student.start():
            for index in range(self.prefix):
                cell = self.lab.cells[index]
                record = {"index": index, "id": cell.get("id"), "kind": self.lab.kinds[index]}
                self.records.append(record | ({"status": "ok", "ename": "", "evalue": "", "seconds": 0.0, "death": ""}
                                              if cell.get("cell_type") == "code" else {"status": "not-run"}))
            return
        self.run_cells(range(self.prefix))

    def finish(self, answers: dict[int, str | None]) -> tuple[list[dict[str, Any]], bool]:
        """Run the answer, test and remaining cells; one record per cell, and whether the restart limit stopped it."""
        self.answers = answers
        try:
            self.run_cells(range(self.prefix, len(self.lab.cells)))
        finally:
            self.student.stop()
        return self.records, self.stopped

    def run_cells(self, indices: range) -> None:
        """Run cells in order, recording each, restarting the student's process after a timeout or a crash."""
        for index in indices:
            cell, kind = self.lab.cells[index], self.lab.kinds[index]
            record = {"index": index, "id": cell.get("id"), "kind": kind}
            if cell.get("cell_type") != "code":
                self.records.append(record | {"status": "not-run"})
                continue
            if self.stopped:
                self.records.append(record | {"status": "skipped"})
                continue
            outcome = self.run_cell(index, cell, kind)
            self.records.append(record | {"status": outcome.status, "ename": outcome.ename,
                                          "evalue": outcome.evalue[: codec.MAX_MESSAGE_TEXT],
                                          "seconds": round(outcome.seconds, 3), "death": outcome.death}
                                | ({"passed": outcome.status == "ok"} if kind == "test" else {}))
            if outcome.status in ("timeout", "died"):
                try:
                    self.recover()
                except _TooManyRestarts:
                    self.stopped = True

    def run_cell(self, index: int, cell: dict[str, Any], kind: str) -> Outcome:
        """One code cell: setup in both processes, answers in the student's, tests in this one."""
        source = cell_source(cell)
        if kind == "test":
            return self.run_here(source, f"<test {cell.get('id')}>")
        if kind == "solution":
            self.answer_names += sorted(bound_names(source) - set(self.answer_names))
            answer = self.answers.get(index)
            return self.run_worker(answer if answer is not None else stub_solution(source)[0])
        outcome = self.run_worker(source, keep=index >= self.prefix)
        if index >= self.prefix and outcome.status not in ("timeout", "died"):
            here = self.run_here(source, f"<cell {cell.get('id')}>")
            if here.status in ("timeout", "died"):
                return here
        return outcome


def setup_sources(lab: Lab, prefix: int) -> list[str]:
    """The sources of the lab's setup code cells (those before the first answer)."""
    return [cell_source(c) for c in lab.cells[:prefix] if c.get("cell_type") == "code"]


def first_answer_cell(lab: Lab) -> int:
    """Index of the first solution cell (the setup cells before it are the same for every submission)."""
    return min((i for i, k in enumerate(lab.kinds) if k == "solution"), default=len(lab.cells))


def run_prefix(lab: Lab) -> tuple[dict[str, Any], int]:
    """Run the lab's setup cells before the first answer in a fresh trusted namespace."""
    namespace, prefix = new_namespace(), first_answer_cell(lab)
    for cell, kind in zip(lab.cells[:prefix], lab.kinds[:prefix]):
        if cell.get("cell_type") == "code":
            outcome = run_in_harness(cell_source(cell), f"<setup {cell.get('id')}>", namespace)
            if outcome.status != "ok":
                raise RuntimeError(f"the lab's setup cell {cell.get('id')!r} failed in the grader: "
                                   f"{outcome.ename}: {outcome.evalue}")
    return namespace, prefix


def _write_json(path: str, data: dict[str, Any]) -> None:
    """Write a result file atomically."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def serve(lab_name: str, lab_path: Path, options: JobOptions, standby: int, expected: int) -> None:
    """The fork server: setup once, then children kept warm (`standby` of them: sandbox started, the lab's setup
    cells run), each handed one job line from stdin; events go out as lines on stdout. No more children are warmed
    than the `expected` jobs still to come need."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    zygote = None
    try:
        lab = parse_lab(lab_name, lab_path)
        zygote = start_zygote(lab, first_answer_cell(lab), options)  # its setup runs while this one's does
        namespace, prefix = run_prefix(lab)
    except BaseException as error:  # reported to the grader, which reports it as a grader error
        out.write(json.dumps({"event": "failed", "error": f"{type(error).__name__}: {error}"}) + "\n")
        if zygote is not None:
            zygote.stop()
        return
    zygote = zygote_ready(zygote, options.timeout * max(1, prefix))
    gc.freeze()  # children share the setup's pages: the collector of a child never walks (and so copies) them
    out.write(json.dumps({"event": "ready"}) + "\n")
    waiting: list[tuple[int, int]] = []  # (pid, write end of its job pipe), oldest (warmest) first
    children: dict[int, int] = {}  # pid -> job number

    def spawn() -> None:
        nonlocal zygote
        if zygote is not None and not zygote.alive():  # it died (it runs no student code: a fault of the host)
            zygote.stop()
            zygote = zygote_ready(start_zygote(lab, prefix, options), options.timeout * max(1, prefix))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(write)
            _child(lab, options, namespace, prefix, read, zygote)
        os.close(read)
        waiting.append((pid, write))

    def top_up() -> None:
        while len(waiting) < min(max(1, standby), max(1, expected)):
            spawn()

    top_up()
    stdin, pending = sys.stdin.buffer, b""
    while True:
        while True:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in children:
                out.write(json.dumps({"event": "done", "job": children.pop(pid), "status": status}) + "\n")
            else:  # a waiting child died before its job came: replace it
                for entry in [w for w in waiting if w[0] == pid]:
                    waiting.remove(entry)
                    os.close(entry[1])
                top_up()
        ready, _, _ = select.select([stdin], [], [], 0.05)
        if not ready:
            continue
        chunk = os.read(stdin.fileno(), 1 << 20)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            job = json.loads(line)
            expected -= 1
            while True:
                if not waiting:
                    spawn()
                pid, write = waiting.pop(0)
                top_up()
                try:
                    os.write(write, line + b"\n")
                    break
                except BrokenPipeError:  # it died just now: take the next
                    continue
                finally:
                    os.close(write)
            children[pid] = job["job"]
            out.write(json.dumps({"event": "started", "job": job["job"], "pid": pid}) + "\n")
    for pid in [*children, *(p for p, _ in waiting)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if zygote is not None:
        zygote.stop()


def start_zygote(lab: Lab, prefix: int, options: JobOptions) -> Zygote | None:
    """The zygote of this run, running the lab's setup cells; None without the sandbox (a plain process cannot make
    namespaces everywhere) or when it cannot start (said in the log: each worker then starts from nothing)."""
    if not options.sandbox:
        return None
    try:
        zygote = Zygote([sys.executable, "-c", WORKER_SOURCE], worker_env(), job_limits(options),
                        Path(options.library))
    except OSError as error:
        print(f"grading without a zygote: {error}", file=sys.stderr)
        return None
    zygote.setup(setup_sources(lab, prefix))
    return zygote


def zygote_ready(zygote: Zygote | None, timeout: float) -> Zygote | None:
    """The zygote once its setup has run, or None when it failed (said in the log)."""
    if zygote is None:
        return None
    try:
        zygote.ready(timeout)
    except ZygoteFailure as error:
        print(f"grading without a zygote: {error}", file=sys.stderr)
        return None
    return zygote


def _read_job(fd: int) -> dict[str, Any] | None:
    """The job line the server writes into a waiting child's pipe (None when the server closed it unused)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def _child(lab: Lab, options: JobOptions, namespace: dict[str, Any], prefix: int, jobs: int,
           zygote: Zygote | None) -> None:
    """A forked child: warm up, wait for a job, grade it, write the result file, and exit (never returns)."""
    code, run, warming, job = 0, None, None, None
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        run = LabRun(lab, options, namespace, prefix, zygote)
        try:
            run.warm()
        except BaseException as error:  # reported with the job it was meant for
            warming = error
        job = _read_job(jobs)
        if job is None:
            run.student.stop()
            os._exit(0)
        if warming is not None:
            raise warming
        answers = {int(k): v for k, v in job["answers"].items()}
        records, stopped = run.finish(answers)
        result = {"records": records, "stopped": stopped}
    except BaseException as error:
        result, code = {"error": "".join(traceback.format_exception_only(type(error), error)).strip()[:2000]}, 1
        if run is not None:
            run.student.stop()
    try:
        if job is not None:
            _write_json(job["result"], result)
    finally:
        os._exit(code)


def job_options(options: Any, library: Path, sandbox: bool) -> dict[str, Any]:
    """The JobOptions of grader.Options (as a dict for the job line)."""
    fields = {k: v for k, v in asdict(options).items() if k in JobOptions.__dataclass_fields__}
    return fields | {"library": str(library), "sandbox": sandbox}


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]), JobOptions(**json.loads(sys.argv[3])), int(sys.argv[4]), int(sys.argv[5]))
