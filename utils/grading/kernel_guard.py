"""Code that runs inside the student's kernel: snapshot trusted state, and restore it before every test cell.

The grader sends this file's text to the kernel (it is never imported by the grader itself). `install(key)` runs
after the lab's setup cells and before the first cell of student code; it records the objects tests rely on
(comparison functions of numpy/torch/math, builtins, IPython's and ipykernel's execution machinery, event hooks,
input and AST transformers, sys hooks, the setup cells' imports). `restore()` puts them back. So a student's
`torch.allclose = lambda *a, **k: True`, an overridden `showtraceback` or `run_cell`, a `pre_run_cell` hook or a
rebound `np` has no effect on the tests. This defeats generic cheats, not an attack written against this file:
student code and tests share one Python process (tests must call the student's functions), so code that hunts
for the guard object itself can still interfere. The grader's other defence, the per-test nonce, covers the case
where the execution machinery lies about success.
"""

import builtins
import sys
import threading
import types

from IPython import get_ipython

#: Modules whose namespaces tests rely on; each is snapshotted if it is imported when the guard is installed.
WATCHED_MODULES = (
    "builtins", "math", "cmath", "operator", "functools", "itertools", "collections", "random", "re", "json",
    "inspect", "types", "unittest", "numpy", "numpy.testing", "numpy.linalg", "numpy.random", "torch",
    "torch.testing", "torch.nn", "torch.nn.functional", "torch.linalg", "pandas", "pandas.testing",
    "IPython", "IPython.core.interactiveshell", "ipykernel.ipkernel", "ipykernel.kernelbase", "ipykernel.zmqshell",
)
#: Top-level packages of WATCHED_MODULES whose modules and functions the setup cells may bind to names.
LIBRARY_ROOTS = {"math", "cmath", "operator", "functools", "itertools", "collections", "random", "numpy", "torch",
                 "pandas", "unittest"}
#: Attributes of sys that decide how errors and output are reported.
SYS_ATTRIBUTES = ("excepthook", "displayhook", "stdout", "stderr", "stdin", "meta_path", "path_hooks", "modules")
#: IPython names in the user namespace that the guard never touches.
IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def _classes(*objects):
    """The classes (whole MRO, `object` excluded) of the given objects, deduplicated, in order."""
    seen = []
    for obj in objects:
        for cls in type(obj).__mro__ if not isinstance(obj, type) else obj.__mro__:
            if cls is not object and cls not in seen:
                seen.append(cls)
    return seen


def _is_library(value):
    """Modules and callables of the libraries tests compare with (`np`, `torch`, `isclose`, ...).

    Only these user-namespace bindings are restored: a student may well reuse a name like `data` for a variable.
    """
    name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
    usable = isinstance(value, types.ModuleType) or callable(value)
    return usable and isinstance(name, str) and name.split(".")[0] in LIBRARY_ROOTS


class GuardError(RuntimeError):
    """The kernel is in a state where tests cannot be trusted (the test then counts as failed)."""


class Guard:
    """A snapshot of trusted kernel state, taken once, restorable any number of times."""

    def __init__(self):
        shell = get_ipython()
        kernel = getattr(shell, "kernel", None)
        self.shell, self.kernel = shell, kernel
        self.namespaces = [(m, dict(vars(m))) for m in map(sys.modules.get, WATCHED_MODULES) if m is not None]
        extra = [shell, kernel, getattr(kernel, "session", None), sys.stdout, sys.stderr, shell.displayhook,
                 shell.display_pub, shell.events, shell.input_transformer_manager]
        torch = sys.modules.get("torch")
        if torch is not None:
            extra.append(torch.Tensor)
        pandas = sys.modules.get("pandas")
        if pandas is not None:
            extra += [pandas.DataFrame, pandas.Series]
        classes = _classes(*[obj for obj in extra if obj is not None])
        self.namespaces += [(cls, dict(vars(cls))) for cls in classes]
        self.instances = [(obj, {k: v for k, v in vars(obj).items() if callable(v)})
                          for obj in (shell, kernel, sys.stdout, sys.stderr) if obj is not None and hasattr(obj, "__dict__")]
        self.sys_attributes = {name: getattr(sys, name) for name in SYS_ATTRIBUTES}
        self.modules = {name: sys.modules[name] for name in WATCHED_MODULES if name in sys.modules}
        self.lists = [(lst, list(lst), False) for lst in self._hook_lists()]
        self.lists += [(lst, list(lst), True) for lst in (sys.meta_path, sys.path_hooks)]
        self.dicts = [(d, dict(d)) for d in self._hook_dicts()]
        self.user_ns = shell.user_ns
        self.bindings = {k: v for k, v in shell.user_ns.items()
                         if not k.startswith("_") and k not in IPYTHON_NAMES and _is_library(v)}
        self.builtin_names = set(vars(builtins))
        self.threads = set(threading.enumerate())

    def _hook_lists(self):
        """Mutable lists whose contents change how cells run: transformers and event callbacks."""
        shell, manager = self.shell, self.shell.input_transformer_manager
        lists = [shell.ast_transformers, shell.input_transformers_post, manager.cleanup_transforms,
                 manager.line_transforms, manager.token_transformers]
        return lists + list(shell.events.callbacks.values())

    def _hook_dicts(self):
        """Mutable dicts whose contents change how messages are handled."""
        kernel = self.kernel
        return [d for d in (getattr(kernel, "shell_handlers", None), getattr(kernel, "control_handlers", None))
                if isinstance(d, dict)]

    def restore(self):
        """Put every snapshotted object back, and drop callables the student bound to names of builtins.

        Raises GuardError while threads started by student code are alive: they could undo the restore.
        """
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        foreign = [t for t in threading.enumerate() if t not in self.threads and not _harmless(t)]
        if foreign:
            raise GuardError(f"threads started by your code are still running ({', '.join(t.name for t in foreign)})")
        for name, value in self.sys_attributes.items():
            setattr(sys, name, value)
        sys.modules.update(self.modules)
        for owner, saved in self.namespaces:
            current = vars(owner)
            for name, value in saved.items():
                if current.get(name, saved) is not value:
                    try:
                        setattr(owner, name, value)
                    except (AttributeError, TypeError):
                        pass
        for obj, saved in self.instances:
            for name in [n for n in vars(obj) if n not in saved and callable(getattr(type(obj), n, None))]:
                delattr(obj, name)
            vars(obj).update(saved)
        for lst, saved, keep_additions in self.lists:
            # Import hooks added since may stay, but behind the original ones, so they cannot shadow a module.
            lst[:] = saved + [x for x in lst if x not in saved] if keep_additions else saved
        for d, saved in self.dicts:
            d.clear()
            d.update(saved)
        if self.shell.user_ns is not self.user_ns:
            self.shell.user_ns = self.user_ns
        ns = self.user_ns
        for name in [n for n in ns if n in self.builtin_names and n not in self.bindings and callable(ns[n])]:
            del ns[name]
        ns.update(self.bindings)


#: Threads that libraries start on their own and that never touch user state: (module, class name).
LIBRARY_THREADS = (("tqdm._monitor", "TMonitor"), ("zmq.utils.garbage", "GarbageCollectorThread"),
                   ("IPython.core.history", "HistorySavingThread"))


def _harmless(thread):
    """Whether a thread is one of the LIBRARY_THREADS (checked by class identity, not by name)."""
    classes = [getattr(sys.modules.get(module), name, None) for module, name in LIBRARY_THREADS]
    return type(thread) in [cls for cls in classes if cls is not None] and "run" not in vars(thread)


def _no_exit(*args, **kwargs):
    """exit() and quit() would end the kernel after the cell; make them raise like sys.exit() instead."""
    raise SystemExit("exit() and quit() are disabled while grading")


def install(key):
    """Snapshot the kernel now and register the guard under an unguessable module name."""
    get_ipython().ask_exit = _no_exit
    guard = Guard()
    stdout = guard.sys_attributes["stdout"]
    guard.write_marker = lambda nonce: type(stdout).uncapped_write(stdout, f"{nonce}\n")
    sys.modules[key] = guard
