"""Values as data between the trusted test harness and the student's process: nothing is pickled.

A message is a JSON header followed by binary blobs (the bytes of tensors and arrays). Values are JSON nodes:
plain scalars as themselves, everything else as a tagged object ({"t": "tensor", ...}). The two directions differ:

- Student -> harness (`Encoder(side="student")`, `Decoder(side="harness")`): plain data only. Tensors come back as
  plain `torch.Tensor`s (subclasses stripped), torch.nn modules and the course's own classes are rebuilt from their
  state by the harness's own trusted classes, and any other object (a function or an instance of a class the student
  wrote) stays in the student's process: the harness gets a *handle*, a number it can call or query.
  The harness decoder checks every tag, type name, size and depth: nothing the student sends can run code there.
- Harness -> student (`Encoder(side="harness")`, `Decoder(side="student")`): the same data, plus library
  functions by name and handles. A function a test passes as an argument (a loss lambda, a helper of a setup cell)
  never crosses: it becomes a *callback*, a number the student's code calls back through the socket, and the
  function runs in the harness on the data sent (gradients too, see worker.Callback). No test code is ever sent.

This module imports only the standard library at load time: the student's process gets its source verbatim.
"""

from __future__ import annotations

import builtins
import importlib
import itertools
import json
import re
import struct
import sys
import types
from typing import Any, Callable

#: Largest header and largest whole message the harness accepts from the student's process.
MAX_HEADER = 64 * 2**20
MAX_MESSAGE = 512 * 2**20
#: Deepest nesting of containers accepted, and most items of one generator sent back.
MAX_DEPTH = 50
MAX_ITEMS = 1_000_000
#: Longest text of an error message carried across.
MAX_MESSAGE_TEXT = 2000

#: Types sent as themselves (JSON values).
PLAIN = (str, int, bool, float, type(None))
PLAIN_TYPES = frozenset(PLAIN)
TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128", "uint8", "int8",
                "int16", "int32", "int64", "bool")
NUMPY_KINDS = "biufcUS"
#: Module prefixes whose functions and classes may be sent by name, and whose modules may be sent as modules.
LIBRARY_ROOTS = ("builtins", "math", "cmath", "operator", "functools", "itertools", "collections", "random", "re",
                 "statistics", "numpy", "torch", "pandas", "scipy", "utils")
#: Namespaces searched for a library function whose __module__ does not name where it can be found.
SEARCH_MODULES = ("torch", "torch.nn.functional", "torch.nn", "torch.linalg", "numpy", "numpy.linalg", "math",
                  "builtins", "operator", "pandas")


class ProtocolError(Exception):
    """A message that breaks the protocol (malformed, too large, too deep, unknown tag or type)."""


class CannotSend(TypeError):
    """A value that the harness cannot send to the student's code."""


# ---------------------------------------------------------------------------------------------------- framing


def send_message(sock, header: dict[str, Any], blobs: list[bytes]) -> None:
    """Write one message: 8-byte header length, JSON header (with the blob sizes), then the blobs."""
    head = json.dumps({**header, "blobs": [len(b) for b in blobs]}, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">Q", len(head)) + head)
    for blob in blobs:
        sock.sendall(blob)


def _read_exactly(sock, size: int, wait: Callable[[], None]) -> bytes:
    """`size` bytes from the socket; `wait()` is called before each read (it sets the timeout or raises)."""
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        wait()
        count = sock.recv_into(view[got:], min(size - got, 1 << 22))
        if count == 0:
            raise EOFError("the other side closed the connection")
        got += count
    return bytes(buffer)


def receive_message(sock, wait: Callable[[], None] = lambda: None, limit: int | None = None) -> tuple[dict, list[bytes]]:
    """Read one message; with `limit`, refuse headers and messages larger than the limits (ProtocolError)."""
    (size,) = struct.unpack(">Q", _read_exactly(sock, 8, wait))
    if limit is not None and size > MAX_HEADER:
        raise ProtocolError(f"a message header of {size} bytes (the limit is {MAX_HEADER})")
    try:
        header = json.loads(_read_exactly(sock, size, wait))
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"a message that is not valid JSON ({type(error).__name__})") from None
    sizes = header.get("blobs") if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(type(s) is int and s >= 0 for s in sizes):
        raise ProtocolError("a message without a valid list of blob sizes")
    if limit is not None and sum(sizes) > limit:
        raise ProtocolError(f"a message of {sum(sizes):,} bytes (the limit is {limit:,})")
    return header, [_read_exactly(sock, s, wait) for s in sizes]


# ---------------------------------------------------------------------------------------------------- names


def class_path(cls: type) -> str:
    """'module:QualName' of a class or function."""
    return f"{cls.__module__}:{cls.__qualname__}"


def trusted_classes() -> dict[str, type]:
    """The classes a reply may name, by 'module:QualName': those of the course library (its grading package
    excluded) and of torch.nn's modules that this process has already loaded. Built from the modules' own
    dictionaries: looking a name up here imports nothing and runs no module-level __getattr__."""
    count = len(sys.modules)
    if _TRUSTED[0] == count:
        return _TRUSTED[1]
    table: dict[str, type] = {}
    for name, module in list(sys.modules.items()):
        if not (isinstance(name, str) and (name.startswith("torch.nn.modules.") or _is_course_module(name))):
            continue
        namespace = getattr(module, "__dict__", None)
        if type(namespace) is not dict:
            continue
        for value in list(namespace.values()):
            if isinstance(value, type) and value.__module__ == name:
                table.setdefault(f"{name}:{value.__qualname__}", value)
    _TRUSTED[:] = [count, table]
    return table


#: The last table of trusted classes, and the number of loaded modules it was built from.
_TRUSTED: list[Any] = [-1, {}]


def _is_course_module(name: str) -> bool:
    """A module of the course library, the grader's own package excluded."""
    return name.startswith("utils.") and not name.startswith("utils.grading")


def _resolve(path: str) -> Any:
    """The object at 'module:Qual.Name' (imports the module; for names the harness itself chose, never a reply's)."""
    module_name, _, qualname = path.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def _is_library(name: str) -> bool:
    """Whether a module name belongs to one of the LIBRARY_ROOTS (the grader's own package excluded)."""
    return name.split(".")[0] in LIBRARY_ROOTS and not name.startswith("utils.grading")


def library_path(value: Any) -> str | None:
    """'module:qualname' under which a library function or class can be found again, or None."""
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and _is_library(module) and "<" not in qualname:
        try:
            if _resolve(f"{module}:{qualname}") is value:
                return f"{module}:{qualname}"
        except (ImportError, AttributeError):
            pass
    name = getattr(value, "__name__", None)
    for module_name in SEARCH_MODULES:
        module_object = sys.modules.get(module_name)
        if module_object is not None and isinstance(name, str) and getattr(module_object, name, None) is value:
            return f"{module_name}:{name}"
    return None


def _course_class(cls: type) -> bool:
    """A class of the course library (sent by state; the harness rebuilds it with its own copy of the class)."""
    return _is_course_module(cls.__module__)


def _module_class(cls: type) -> bool:
    """A torch.nn module class that can be rebuilt from its state: torch's own, or the course's."""
    return cls.__module__.startswith("torch.nn.modules.") or _course_class(cls)


# ---------------------------------------------------------------------------------------------------- encoding


class Encoder:
    """Turns values into JSON nodes plus blobs. `side` is who encodes: "student" or "harness".

    `handle_of(value)` gives a handle number, or None. The harness asks it first (is the value a proxy of a
    student object?); the student's side asks it last, for a value that is not data (the worker's object table).
    """

    def __init__(self, side: str, handle_of: Callable[[Any], int | dict | None]) -> None:
        self.side, self.handle_of = side, handle_of
        self.blobs: list[bytes] = []
        #: Harness side: the callback number of a test's function (it stays in the harness), or None.
        self.callback_of: Callable[[Any], int] | None = None
        #: Student side, for a call's result: where a tensor's memory belongs to an argument (see `Decoder.alias`).
        self.alias_of: Callable[[Any], dict | None] | None = None

    def blob(self, data: bytes) -> int:
        """Append a blob; returns its index."""
        self.blobs.append(data)
        return len(self.blobs) - 1

    def encode(self, value: Any, depth: int = 0) -> Any:
        """The JSON node for `value`."""
        if depth > MAX_DEPTH:
            raise CannotSend(f"values nested more than {MAX_DEPTH} levels deep")
        if self.side == "harness":
            handle = self.handle_of(value)
            if handle is not None:
                return {"t": "handle", "id": handle}
        kind = type(value)
        if value is None or kind in PLAIN:  # JSON carries NaN and infinities too
            return value
        numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")
        if numpy is not None and isinstance(value, numpy.generic):
            return self.array(numpy.asarray(value), scalar=True)
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str(value)
        if isinstance(value, complex):
            return {"t": "complex", "v": [value.real, value.imag]}
        if isinstance(value, (bytes, bytearray)):
            return {"t": "bytearray" if isinstance(value, bytearray) else "bytes", "b": self.blob(bytes(value))}
        if torch is not None:
            node = self.torch_value(value, torch, depth)
            if node is not None:
                return node
        if numpy is not None and isinstance(value, numpy.ndarray):
            return self.array(value)
        pandas = sys.modules.get("pandas")
        if pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series)):
            return self.frame(value, pandas, depth)
        if isinstance(value, tuple) and _course_class(kind) and hasattr(value, "_fields"):
            return {"t": "namedtuple", "cls": class_path(kind), "v": [self.encode(x, depth + 1) for x in value]}
        if kind in (list, tuple) and _plain(value):  # fast path: texts, ids, labels
            return {"t": kind.__name__, "v": list(value)}
        if kind is dict and _plain(value) and _plain(value.values()):
            return {"t": "dict", "k": list(value), "v": list(value.values())}
        if isinstance(value, (list, tuple, set, frozenset)):
            name = next(n for t, n in ((list, "list"), (tuple, "tuple"), (frozenset, "frozenset"), (set, "set"))
                        if isinstance(value, t))
            items = sorted(value, key=repr) if name in ("set", "frozenset") else value
            return {"t": name, "v": [self.encode(x, depth + 1) for x in items]}
        if isinstance(value, dict):
            return {"t": "dict", "k": [self.encode(k, depth + 1) for k in value],
                    "v": [self.encode(v, depth + 1) for v in value.values()]}
        if isinstance(value, range):
            return {"t": "range", "v": [value.start, value.stop, value.step]}
        if isinstance(value, slice):
            return {"t": "slice", "v": [self.encode(x, depth + 1) for x in (value.start, value.stop, value.step)]}
        if value is Ellipsis:
            return {"t": "ellipsis"}
        if isinstance(value, (types.GeneratorType, map, filter, zip, enumerate, type({}.keys()),
                              type({}.values()), type({}.items()), itertools.chain)) or kind.__name__.endswith("iterator"):
            items = list(itertools.islice(value, MAX_ITEMS + 1))
            if len(items) > MAX_ITEMS:
                raise CannotSend(f"an iterator of more than {MAX_ITEMS:,} items")
            return {"t": "iter", "v": [self.encode(x, depth + 1) for x in items]}
        if _course_class(kind) and hasattr(value, "__dict__") and not callable(value):
            return {"t": "object", "cls": class_path(kind), "state": self.encode(dict(vars(value)), depth + 1)}
        if self.side == "harness":
            return self.harness_callable(value)
        handle = self.handle_of(value)
        if handle is None:
            raise CannotSend(f"cannot send a {kind.__name__}")
        return handle if isinstance(handle, dict) else {"t": "handle", "id": handle}

    def torch_value(self, value: Any, torch: Any, depth: int) -> Any:
        """Nodes for tensors, modules, dtypes, sizes and devices (None for other values)."""
        if isinstance(value, torch.Tensor):
            return self.tensor(value, torch, depth)
        if isinstance(value, torch.Size):
            return {"t": "size", "v": [int(x) for x in value]}
        if isinstance(value, torch.dtype):
            return {"t": "dtype", "v": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"t": "device", "v": str(value)}
        if isinstance(value, torch.nn.Module) and all(_module_class(type(m)) for m in value.modules()):
            return self.module(value, torch, depth)
        return None

    def tensor(self, value: Any, torch: Any, depth: int) -> dict[str, Any]:
        """A plain tensor: dtype, shape, bytes, requires_grad, and its .grad (subclass behaviour is dropped)."""
        with torch._C.DisableTorchFunctionSubclass():
            plain = torch.Tensor._make_subclass(torch.Tensor, value.detach()) if type(value) is not torch.Tensor else value.detach()
            if plain.layout != torch.strided:
                plain = plain.to_dense()
            plain = plain.cpu().contiguous()
            dtype = str(plain.dtype).removeprefix("torch.")
            if dtype not in TORCH_DTYPES:
                raise CannotSend(f"cannot send a tensor of dtype {dtype}")
            raw = plain.view(torch.int16) if dtype == "bfloat16" else plain
            data = raw.numpy().tobytes() if raw.numel() else b""
            grad = value.grad if value.is_leaf else None
        node = {"t": "tensor", "dtype": dtype, "shape": list(plain.shape), "b": self.blob(data),
                "rg": bool(value.requires_grad)}
        alias = self.alias_of(value) if self.alias_of is not None else None
        if alias is not None:
            node["alias"] = alias
        if grad is not None and depth < MAX_DEPTH:
            node["grad"] = self.tensor(grad, torch, depth + 1)
        return node

    def array(self, value: Any, scalar: bool = False) -> dict[str, Any]:
        """A NumPy array (or scalar) of numbers, booleans or strings; object arrays as a list of values."""
        if value.dtype.kind == "O":
            return {"t": "objarray", "shape": list(value.shape), "v": self.encode(value.ravel().tolist(), 1)}
        if value.dtype.kind not in NUMPY_KINDS:
            raise CannotSend(f"cannot send an array of dtype {value.dtype}")
        contiguous = value if value.flags.c_contiguous else value.copy()
        return {"t": "ndarray", "dtype": value.dtype.str, "shape": list(value.shape), "scalar": scalar,
                "b": self.blob(contiguous.tobytes())}

    def frame(self, value: Any, pandas: Any, depth: int) -> dict[str, Any]:
        """A DataFrame or Series: columns/name, index values and one array per column."""
        index = {"v": self.encode(value.index.to_numpy(), depth + 1), "name": self.encode(value.index.name, depth + 1)}
        if isinstance(value, pandas.Series):
            return {"t": "series", "name": self.encode(value.name, depth + 1), "index": index,
                    "v": self.encode(value.to_numpy(), depth + 1)}
        return {"t": "frame", "columns": self.encode(list(value.columns), depth + 1), "index": index,
                "v": [self.encode(value.iloc[:, i].to_numpy(), depth + 1) for i in range(value.shape[1])]}

    def module(self, value: Any, torch: Any, depth: int) -> dict[str, Any]:
        """A torch.nn module of a known class: its public attributes, parameters, buffers and children."""
        attrs = {}
        for name, attr in vars(value).items():
            if name.startswith("_") or name == "training":
                continue
            try:
                attrs[name] = self.encode(attr, depth + 1)
            except CannotSend:
                continue
        return {"t": "module", "cls": class_path(type(value)), "training": bool(value.training), "attrs": attrs,
                "params": {k: None if p is None else self.tensor(p, torch, depth + 1) for k, p in value._parameters.items()},
                "buffers": {k: None if b is None else self.tensor(b, torch, depth + 1) for k, b in value._buffers.items()},
                "children": {k: None if c is None else self.module(c, torch, depth + 1) for k, c in value._modules.items()}}

    def harness_callable(self, value: Any) -> dict[str, Any]:
        """Functions, classes and modules the tests pass to the student's code (harness side only)."""
        if isinstance(value, types.ModuleType):
            if not _is_library(value.__name__):
                raise CannotSend(f"cannot send the module {value.__name__}")
            return {"t": "pymodule", "v": value.__name__}
        path = library_path(value)
        if path is not None:
            return {"t": "ref", "v": path}
        if callable(value) and self.callback_of is not None:
            return {"t": "callback", "id": self.callback_of(value)}
        raise CannotSend(f"cannot send a {type(value).__name__} to the student's code")


def _plain(values: Any) -> bool:
    """Whether every item is a plain value (checked in C: map and set, no Python loop)."""
    return set(map(type, values)) <= PLAIN_TYPES


def fingerprint(value: Any) -> Any:
    """A cheap comparable summary of a value's content, or None when there is none cheaper than its encoding.

    Used to tell whether a value changed (copy-back) and whether a value already sent is still the same (cache).
    """
    kind = type(value)
    if kind in (list, tuple, set, frozenset) and _plain(value):
        return (kind.__name__, len(value), hash(tuple(value) if kind in (list, tuple) else frozenset(value)))
    if kind is dict and _plain(value) and _plain(value.values()):
        return ("dict", len(value), hash(tuple(value.items())))
    if kind in (list, tuple) and set(map(type, value)) <= {list, tuple} and all(map(_plain, value)):
        return (kind.__name__, "nested", len(value), hash(tuple((type(x) is list, tuple(x)) for x in value)))
    numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")
    if numpy is not None and kind is numpy.ndarray and value.dtype.kind in NUMPY_KINDS:
        import hashlib
        return ("ndarray", value.shape, value.dtype.str, hashlib.blake2b(numpy.ascontiguousarray(value)).digest())
    if torch is not None and kind in (torch.Tensor, torch.nn.Parameter) and value.layout == torch.strided:
        import hashlib
        plain = value.detach().cpu().contiguous()
        raw = plain.view(torch.int16) if plain.dtype == torch.bfloat16 else plain
        grad = fingerprint(value.grad) if value.grad is not None else None
        return ("tensor", tuple(plain.shape), str(plain.dtype), value.requires_grad, grad,
                hashlib.blake2b(raw.numpy()).digest() if raw.numel() else b"")
    return None


def encode(value: Any, side: str, handle_of: Callable[[Any], int | None]) -> tuple[Any, list[bytes]]:
    """(node, blobs) for one value."""
    encoder = Encoder(side, handle_of)
    return encoder.encode(value), encoder.blobs


# ---------------------------------------------------------------------------------------------------- decoding


class Decoder:
    """Turns JSON nodes plus blobs back into values. `side` is who decodes: "harness" (strict) or "student".

    `from_handle(number, node)` gives the object behind a handle: a proxy on the harness side, the table entry
    on the student's side.
    """

    def __init__(self, side: str, blobs: list[bytes], from_handle: Callable[[int, dict], Any],
                 cache: dict[int, Any] | None = None, arguments: Callable[[Any], Any] | None = None) -> None:
        self.side, self.blobs, self.from_handle = side, blobs, from_handle
        self.cache = {} if cache is None else cache
        #: Harness side, for a call's result: the call's argument a tensor's "alias" names (or None).
        self.arguments = arguments
        self.strict = side == "harness"

    def fail(self, what: str) -> ProtocolError:
        """The error for a malformed node."""
        return ProtocolError(f"malformed value: {what}")

    def blob(self, node: dict) -> bytes:
        """The blob a node refers to."""
        index = node.get("b")
        if type(index) is not int or not 0 <= index < len(self.blobs):
            raise self.fail("bad blob index")
        return self.blobs[index]

    def decode(self, node: Any, depth: int = 0) -> Any:
        """The value of a node."""
        if depth > MAX_DEPTH + 2:
            raise self.fail("nested too deeply")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is not dict or type(node.get("t")) is not str:
            raise self.fail(f"a node of type {type(node).__name__}")
        method = getattr(self, "decode_" + node["t"], None)
        if method is None or (node["t"] in ("callback", "ref", "pymodule", "cache", "cached") and self.strict):
            raise self.fail(f"unknown tag {node['t']!r}")
        return method(node, depth + 1)

    def items(self, node: dict, depth: int, key: str = "v") -> list[Any]:
        """The decoded list under `key`."""
        values = node.get(key)
        if type(values) is not list:
            raise self.fail(f"{node['t']} without a list")
        if _plain(values):  # fast path: nothing to decode
            return values
        return [self.decode(v, depth) for v in values]

    def decode_handle(self, node: dict, depth: int) -> Any:
        if type(node.get("id")) is not int:
            raise self.fail("bad handle")
        return self.from_handle(node["id"], node)

    def decode_complex(self, node: dict, depth: int) -> complex:
        real, imag = self.items(node, depth)
        if type(real) is not float or type(imag) is not float:
            raise self.fail("bad complex")
        return complex(real, imag)

    def decode_bytes(self, node: dict, depth: int) -> bytes:
        return self.blob(node)

    def decode_bytearray(self, node: dict, depth: int) -> bytearray:
        return bytearray(self.blob(node))

    def decode_cache(self, node: dict, depth: int) -> Any:
        """A value the harness will refer to again by number (student side)."""
        value = self.decode(node.get("v"), depth)
        self.cache[node["id"]] = value
        return value

    def decode_cached(self, node: dict, depth: int) -> Any:
        """A value the harness sent before, unchanged since (student side)."""
        return self.cache[node["id"]]

    def decode_list(self, node: dict, depth: int) -> list:
        return self.items(node, depth)

    def decode_tuple(self, node: dict, depth: int) -> tuple:
        return tuple(self.items(node, depth))

    def decode_set(self, node: dict, depth: int) -> set:
        return set(self.hashable(self.items(node, depth)))

    def decode_frozenset(self, node: dict, depth: int) -> frozenset:
        return frozenset(self.hashable(self.items(node, depth)))

    def hashable(self, values: list[Any]) -> list[Any]:
        """Check that every value can be a set member or dict key (only plain immutable values can)."""
        def plain(value: Any) -> bool:
            return value is None or type(value) in (bool, int, float, str, bytes, complex, frozenset) or (
                type(value) is tuple and all(plain(v) for v in value)) or self.numpy_scalar(value)
        if self.strict and not all(plain(v) for v in values):
            raise self.fail("an unhashable set member or dict key")
        return values

    @staticmethod
    def numpy_scalar(value: Any) -> bool:
        numpy = sys.modules.get("numpy")
        return numpy is not None and isinstance(value, numpy.generic)

    def decode_dict(self, node: dict, depth: int) -> dict:
        keys, values = self.hashable(self.items(node, depth, "k")), self.items(node, depth)
        if len(keys) != len(values):
            raise self.fail("a dict with more keys than values")
        return dict(zip(keys, values))

    def decode_range(self, node: dict, depth: int) -> range:
        values = node.get("v")
        if type(values) is not list or len(values) != 3 or not all(type(v) is int for v in values) or values[2] == 0:
            raise self.fail("bad range")
        return range(*values)

    def decode_slice(self, node: dict, depth: int) -> slice:
        values = self.items(node, depth)
        if len(values) != 3:
            raise self.fail("bad slice")
        return slice(*values)

    def decode_ellipsis(self, node: dict, depth: int) -> Any:
        return Ellipsis

    def decode_iter(self, node: dict, depth: int) -> Any:
        return iter(self.items(node, depth))

    def decode_size(self, node: dict, depth: int) -> Any:
        import torch
        values = node.get("v")
        if type(values) is not list or not all(type(v) is int for v in values):
            raise self.fail("bad size")
        return torch.Size(values)

    def decode_dtype(self, node: dict, depth: int) -> Any:
        import torch
        if node.get("v") not in TORCH_DTYPES:
            raise self.fail("bad dtype")
        return getattr(torch, node["v"])

    def decode_device(self, node: dict, depth: int) -> Any:
        import torch
        if node.get("v") not in ("cpu", "meta"):
            raise self.fail("bad device")
        return torch.device(node["v"])

    def shape(self, node: dict) -> list[int]:
        """A validated shape."""
        shape = node.get("shape")
        if type(shape) is not list or len(shape) > 64 or not all(type(s) is int and s >= 0 for s in shape):
            raise self.fail("bad shape")
        return shape

    def decode_tensor(self, node: dict, depth: int) -> Any:
        import math

        import torch
        dtype, shape = node.get("dtype"), self.shape(node)
        if dtype not in TORCH_DTYPES:
            raise self.fail("bad tensor dtype")
        torch_dtype = getattr(torch, dtype)
        data = self.blob(node)
        itemsize = torch.empty((), dtype=torch_dtype).element_size()
        if len(data) != math.prod(shape) * itemsize:
            raise self.fail("tensor bytes do not match its shape")
        if not data:
            tensor = torch.zeros(shape, dtype=torch_dtype)
        elif dtype == "bfloat16":
            tensor = torch.frombuffer(bytearray(data), dtype=torch.int16).view(torch.bfloat16).reshape(shape)
        else:
            tensor = torch.frombuffer(bytearray(data), dtype=torch_dtype).reshape(shape)
        if node.get("rg") is True and (tensor.is_floating_point() or tensor.is_complex()):
            tensor.requires_grad_(True)
        if node.get("alias") is not None and self.arguments is not None:
            tensor = self.alias(node["alias"], tensor)
        grad = node.get("grad")
        if grad is not None:
            grad = self.decode(grad, depth)
            if isinstance(grad, torch.Tensor) and grad.shape == tensor.shape and grad.dtype == tensor.dtype:
                tensor.grad = grad
        return tensor

    def alias(self, alias: Any, tensor: Any) -> Any:
        """A result tensor that shares memory with an argument in the student's process (e.g. a view of its
        weights) becomes the same view of the harness's own argument, so sharing stays visible; else `tensor`."""
        import torch
        if type(alias) is not dict or not all(type(alias.get(k)) is int for k in ("offset",)):
            return tensor
        base = self.arguments(alias)
        stride = alias.get("stride")
        if (not isinstance(base, torch.Tensor) or base.dtype != tensor.dtype or type(stride) is not list
                or len(stride) != tensor.dim() or not all(type(s) is int and s >= 0 for s in stride)):
            return tensor
        offset, storage = alias["offset"], base.untyped_storage().nbytes() // base.element_size()
        last = offset + sum((n - 1) * s for n, s in zip(tensor.shape, stride)) if tensor.numel() else offset
        if offset < 0 or last >= storage:
            return tensor
        view = base.detach().as_strided(tensor.shape, stride, offset)
        return view if torch.equal(view, tensor.detach()) else tensor

    def decode_ndarray(self, node: dict, depth: int) -> Any:
        import math

        import numpy
        shape = self.shape(node)
        text = node.get("dtype")
        if type(text) is not str or not re.fullmatch(r"[<>|=]?[biufcUS][0-9]{1,3}", text):
            raise self.fail("bad array dtype")
        dtype = numpy.dtype(text)
        if dtype.kind not in NUMPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise self.fail("bad array dtype")
        data = self.blob(node)
        if len(data) != math.prod(shape) * dtype.itemsize:
            raise self.fail("array bytes do not match its shape")
        array = numpy.frombuffer(bytearray(data), dtype=dtype).reshape(shape)
        return array[()] if node.get("scalar") is True and not shape else array

    def decode_objarray(self, node: dict, depth: int) -> Any:
        import math

        import numpy
        shape, values = self.shape(node), self.decode(node.get("v"), depth)
        if type(values) is not list or len(values) != math.prod(shape):
            raise self.fail("bad object array")
        array = numpy.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)

    def index(self, node: dict, depth: int) -> Any:
        import pandas
        index = node.get("index")
        if type(index) is not dict:
            raise self.fail("a frame without an index")
        return pandas.Index(self.decode(index.get("v"), depth), name=self.label(self.decode(index.get("name"), depth)))

    def label(self, value: Any) -> Any:
        """A column, series or index name (must be plain)."""
        self.hashable([value])
        return value

    def decode_series(self, node: dict, depth: int) -> Any:
        import pandas
        return pandas.Series(self.decode(node.get("v"), depth), index=self.index(node, depth),
                             name=self.label(self.decode(node.get("name"), depth)))

    def decode_frame(self, node: dict, depth: int) -> Any:
        import pandas
        columns = self.decode(node.get("columns"), depth)
        values = self.items(node, depth)
        if type(columns) is not list or len(columns) != len(values):
            raise self.fail("bad frame")
        self.hashable(columns)
        frame = pandas.DataFrame({i: v for i, v in enumerate(values)}, index=self.index(node, depth))
        frame.columns = columns
        return frame

    def course_class(self, node: dict, check: Callable[[type], bool]) -> type:
        """The class a node names, which must pass `check`: looked up in the table of trusted classes already
        loaded in this process (nothing is imported or called to find it)."""
        path = node.get("cls")
        if type(path) is not str or path.count(":") != 1:
            raise self.fail("bad class name")
        cls = trusted_classes().get(path)
        if cls is None:
            raise self.fail(f"unknown class {path[:100]!r}")
        if not check(cls):
            raise self.fail(f"class {path[:100]!r} may not be sent")
        return cls

    def decode_namedtuple(self, node: dict, depth: int) -> Any:
        cls = self.course_class(node, lambda c: _course_class(c) and issubclass(c, tuple) and hasattr(c, "_fields"))
        return cls(*self.items(node, depth))

    def decode_object(self, node: dict, depth: int) -> Any:
        cls = self.course_class(node, lambda c: _course_class(c) and not issubclass(c, (tuple, BaseException)))
        state = self.decode(node.get("state"), depth)
        if type(state) is not dict or not all(type(k) is str and not k.startswith("__") for k in state):
            raise self.fail("bad object state")
        value = object.__new__(cls)
        vars(value).update(state)
        return value

    def decode_module(self, node: dict, depth: int) -> Any:
        import torch
        cls = self.course_class(node, lambda c: issubclass(c, torch.nn.Module) and _module_class(c))
        module = cls.__new__(cls)
        torch.nn.Module.__init__(module)
        module.training = node.get("training") is True
        for field in ("attrs", "params", "buffers", "children"):
            if type(node.get(field)) is not dict:
                raise self.fail(f"a module without {field}")
        for name, value in node["attrs"].items():
            if not name.isidentifier() or name.startswith("_") or hasattr(cls, name):
                raise self.fail(f"bad module attribute {name[:50]!r}")
            vars(module)[name] = self.decode(value, depth)
        for field, target in (("params", module._parameters), ("buffers", module._buffers), ("children", module._modules)):
            for name, value in node[field].items():
                if not (name.isidentifier() or name.isdigit()):
                    raise self.fail(f"bad module member {name[:50]!r}")
                if value is None:
                    target[name] = None
                    continue
                if type(value) is not dict or value.get("t") != ("module" if field == "children" else "tensor"):
                    raise self.fail(f"bad module {field}")
                decoded = self.decode(value, depth)
                if field == "params":
                    grad = decoded.grad
                    decoded = torch.nn.Parameter(decoded.detach(), requires_grad=decoded.requires_grad)
                    decoded.grad = grad
                target[name] = decoded
        return module

    # Harness -> student only.

    def decode_pymodule(self, node: dict, depth: int) -> Any:
        return importlib.import_module(node["v"])

    def decode_ref(self, node: dict, depth: int) -> Any:
        return _resolve(node["v"])

    def decode_callback(self, node: dict, depth: int) -> Any:
        """A function of the harness's tests, called back through the socket (the handle table makes it)."""
        if type(node.get("id")) is not int:
            raise self.fail("bad callback")
        return self.from_handle(node["id"], node)


def decode(node: Any, blobs: list[bytes], side: str, from_handle: Callable[[int, dict], Any],
           cache: dict[int, Any] | None = None, arguments: Callable[[Any], Any] | None = None) -> Any:
    """The value of one node (`cache`: the student's side's table of values the harness may refer to again;
    `arguments`: the harness's side's resolver of result tensors that share memory with a call's arguments).

    On the harness's side, anything at all raised while decoding (a BaseException too) is a ProtocolError: a
    reply is the submission's data, and no reply can stop the grader or pass for the grader's own failure."""
    decoder = Decoder(side, blobs, from_handle, cache, arguments)
    if not decoder.strict:
        return decoder.decode(node)
    try:
        return decoder.decode(node)
    except ProtocolError:
        raise
    except BaseException as error:  # noqa: BLE001 - SystemExit or KeyboardInterrupt from a reply is the reply's fault
        raise ProtocolError(f"a value that could not be decoded ({type(error).__name__})") from None


def exception_bases(error: BaseException) -> list[str]:
    """Names of the built-in exception classes among an exception's classes, most specific first."""
    return [cls.__name__ for cls in type(error).__mro__
            if issubclass(cls, BaseException) and getattr(builtins, cls.__name__, None) is cls]


def describe_exception(error: BaseException) -> dict[str, Any]:
    """An exception as data: its type's name, built-in bases and (clipped) message."""
    try:
        message = str(error)
    except Exception:  # a broken __str__ in the student's exception class
        message = "(the exception's message could not be read)"
    return {"type": type(error).__name__[:100], "bases": exception_bases(error),
            "message": message[:MAX_MESSAGE_TEXT]}
