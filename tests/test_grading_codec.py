"""The codec between harness and student: faithful round trips, and a harness side that accepts data only."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from utils.data import WordVectors
from utils.grading import codec
from utils.grading.harness import bound_names, copy_back
from utils.models import BagOfWords
from utils.text import Vocab


def student_to_harness(value):
    """Encode on the student's side (objects that are not data become handles), decode strictly on the harness's."""
    table = []

    def handle(obj):
        table.append(obj)
        return {"t": "handle", "id": len(table) - 1, "kind": "object", "name": type(obj).__name__}

    node, blobs = codec.encode(value, "student", handle)
    return codec.decode(json.loads(json.dumps(node)), blobs, "harness", lambda number, node: ("handle", number))


def harness_to_student(value):
    node, blobs = codec.encode(value, "harness", lambda obj: None)
    return codec.decode(json.loads(json.dumps(node)), blobs, "student", lambda number, node: None)


def reject(node, blobs=()):
    with pytest.raises(codec.ProtocolError):
        codec.decode(node, list(blobs), "harness", lambda number, node: None)


@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, float("inf"), "text", b"\x00\x01", [1, "a", None], (1, (2, 3)), {1, 2}, frozenset({"a"}),
    {"a": 1, (1, 2): [3, 4]}, range(2, 9, 3), slice(1, None, 2), 1 + 2j, [[1, 2], [3]], {"nested": {"x": [1.5]}},
])
def test_plain_values_round_trip(value):
    assert student_to_harness(value) == value
    assert type(student_to_harness(value)) is type(value)


def test_tensors_keep_dtype_shape_values_and_gradient_state():
    for dtype in (torch.float32, torch.float64, torch.int64, torch.bool, torch.bfloat16, torch.uint8):
        t = (torch.arange(12).reshape(3, 4) % 3).to(dtype)
        back = student_to_harness(t)
        assert back.dtype == dtype and back.shape == t.shape and torch.equal(back, t)
    t = torch.randn(2, 3, requires_grad=True)
    (t * 2).sum().backward()
    back = student_to_harness(t)
    assert back.requires_grad and torch.equal(back.grad, torch.full((2, 3), 2.0))
    view = torch.arange(10.0)[::3]  # not contiguous
    assert torch.equal(student_to_harness(view), view)
    assert student_to_harness(torch.zeros(0, 5)).shape == (0, 5)


def test_a_tensor_subclass_arrives_as_a_plain_tensor():
    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return True

    back = student_to_harness(torch.ones(3).as_subclass(Liar))
    assert type(back) is torch.Tensor
    assert not torch.equal(back, torch.zeros(3))


def test_numpy_pandas_and_course_objects_round_trip():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(student_to_harness(array), array) and student_to_harness(array).dtype == np.float32
    assert type(student_to_harness(np.int64(3))) is np.int64
    assert list(student_to_harness(np.array(["a", "bc"]))) == ["a", "bc"]
    frame = pd.DataFrame({"word": ["a", "b"], "score": [0.5, 1.0]}, index=[10, 20])
    pd.testing.assert_frame_equal(student_to_harness(frame), frame, check_index_type=False)
    pd.testing.assert_series_equal(student_to_harness(frame["score"]), frame["score"], check_index_type=False)
    space = WordVectors(["cat", "dog"], np.eye(2, dtype=np.float32))
    back = student_to_harness(space)
    assert type(back) is WordVectors and back.index == {"cat": 0, "dog": 1} and "dog" in back
    vocab = Vocab.build([["a", "b", "a"]])
    assert student_to_harness(vocab).itos == vocab.itos


def test_modules_are_rebuilt_by_type_and_state():
    embedding = nn.Embedding(5, 3, padding_idx=0)
    back = student_to_harness(embedding)
    assert type(back) is nn.Embedding and back.padding_idx == 0
    assert torch.equal(back.weight, embedding.weight) and back.weight.requires_grad
    ids = torch.tensor([0, 4])
    assert torch.equal(back(ids), embedding(ids))
    model = BagOfWords(10, 4, 2)
    model.embedding.weight.requires_grad_(False)
    model.eval()
    back = student_to_harness(model)
    assert type(back) is BagOfWords and not back.training and not back.embedding.weight.requires_grad
    assert torch.equal(back(torch.tensor([1, 2]), torch.tensor([0])), model(torch.tensor([1, 2]), torch.tensor([0])))


def test_objects_of_the_students_own_classes_stay_behind_as_handles():
    class Mine(nn.Module):
        def forward(self, x):
            return x

    class Cheat(list):
        def __eq__(self, other):
            return True

    assert student_to_harness(Mine()) == ("handle", 0)
    assert student_to_harness(lambda: 1) == ("handle", 0)
    assert student_to_harness(nn.Sequential(nn.Linear(2, 2), Mine())) == ("handle", 0)  # a student class inside
    assert type(student_to_harness(Cheat([1]))) is list  # subclasses of data become the plain type
    assert student_to_harness(Cheat([1])) != [2]


def test_the_harness_sends_library_functions_by_name_and_its_own_functions_as_callback_numbers_only():
    secret = "hidden-loss-check"
    def loss(v):
        return (v * 2).sum() if secret else None

    encoder = codec.Encoder("harness", lambda obj: None)
    callbacks = []
    encoder.callback_of = lambda f: callbacks.append(f) or len(callbacks) - 1
    node = encoder.encode([loss, loss])
    assert node == {"t": "list", "v": [{"t": "callback", "id": 0}, {"t": "callback", "id": 1}]}
    assert encoder.blobs == [] and callbacks == [loss, loss]
    with pytest.raises(codec.CannotSend):  # without a harness to call back, a test's function cannot be sent at all
        harness_to_student(loss)
    assert harness_to_student(F.embedding) is F.embedding
    assert harness_to_student(torch.tensor) is torch.tensor
    assert harness_to_student(nn.Embedding) is nn.Embedding


@pytest.mark.parametrize("tag", ["code", "callback", "ref", "pymodule", "cache", "cached"])
def test_the_harness_refuses_what_only_it_may_send(tag):
    reject({"t": tag, "v": "os:system", "b": 0, "id": 0, "name": "x", "globals": {}, "defaults": None, "closure": []},
           [b"\x00"])


@pytest.mark.parametrize("node", [
    {"t": "object", "cls": "subprocess:Popen", "state": {"t": "dict", "k": [], "v": []}},
    {"t": "object", "cls": "utils.grading.cache:CacheSigner", "state": {"t": "dict", "k": [], "v": []}},
    {"t": "module", "cls": "builtins:object", "training": True, "attrs": {}, "params": {}, "buffers": {}, "children": {}},
    {"t": "module", "cls": "torch.nn.modules.linear:Linear", "training": True, "attrs": {"forward": 1},
     "params": {}, "buffers": {}, "children": {}},
    {"t": "module", "cls": "torch.nn.modules.linear:Linear", "training": True, "attrs": {"__class__": 1},
     "params": {}, "buffers": {}, "children": {}},
    {"t": "namedtuple", "cls": "collections:OrderedDict", "v": []},
    {"t": "tensor", "dtype": "float32", "shape": [4], "b": 0},  # 4 floats need 16 bytes, the blob has 3
    {"t": "tensor", "dtype": "object", "shape": [1], "b": 0},
    {"t": "ndarray", "dtype": "|O", "shape": [1], "b": 0},
    {"t": "set", "v": [{"t": "list", "v": []}]},  # an unhashable member
    {"t": "list"},
    [1, 2],
    {"t": "nope"},
])
def test_the_harness_refuses_malformed_or_foreign_values(node):
    reject(node, [b"abc"])


def test_the_harness_refuses_values_nested_too_deeply():
    node = 1
    for _ in range(codec.MAX_DEPTH + 5):
        node = {"t": "list", "v": [node]}
    reject(node)


def test_copy_back_puts_the_students_changes_into_the_tests_objects():
    table = nn.Embedding(3, 2)
    changed = student_to_harness(table)
    with torch.no_grad():
        changed.weight.fill_(7.0)
    changed.weight.requires_grad_(False)
    weight = table.weight
    copy_back(table, changed)
    assert table.weight is weight and torch.all(table.weight == 7.0) and not table.weight.requires_grad
    vector = torch.ones(3, requires_grad=True)
    changed = student_to_harness(vector)
    with torch.no_grad():
        changed.zero_()
    changed.grad = torch.full((3,), 2.0)
    copy_back(vector, changed)
    assert torch.equal(vector.grad, changed.grad)


@pytest.mark.parametrize("fixture, spoiled", [
    (["a", "b"], []), ({"the": 0}, {}), ({1, 2}, set()), (bytearray(b"ab"), b""), (np.ones(3), np.zeros(3)),
    (torch.ones(3), torch.zeros(3)), (np.ones(3, dtype=bool), np.zeros(3, dtype=bool)),
])
def test_copy_back_never_rewrites_a_fixture_that_is_not_a_modules_state(fixture, spoiled):
    """The attack: a wrong answer that also empties, zeroes or fills what it was given, so that a test comparing
    with that object after the call compares the wrong answer with itself."""
    before = copy.deepcopy(fixture)
    copy_back(fixture, spoiled)

    def items(value):
        return np.asarray(list(value) if isinstance(value, (set, dict)) else value)

    assert type(fixture) is type(before) and np.array_equal(items(fixture), items(before))


def test_copy_back_never_rewrites_a_course_object():
    vocab = Vocab(["cat"])
    spoiled = student_to_harness(vocab)
    spoiled.itos.clear()
    spoiled.stoi.clear()
    copy_back(vocab, spoiled)
    assert vocab.itos == ["[PAD]", "[UNK]", "cat"] and vocab.stoi["cat"] == 2


def test_bound_names_are_the_definitions_and_assignments_of_a_cell():
    source = "import os\nfrom x import y\nA, (B, C) = 1, (2, 3)\nD: int = 4\ndef f():\n    inner = 1\nclass K:\n    pass\n%time 1"
    assert bound_names(source) == {"A", "B", "C", "D", "f", "K"}


@pytest.mark.parametrize("path", ["this:X", "antigravity:X", "utils.grading.__main__:X", "utils.grading.cli:main",
                                  "utils.not_loaded_yet:X", "os:system", "builtins:object"])
def test_a_reply_naming_a_class_imports_nothing_and_is_refused(path):
    """The attack: a reply naming a class in a module with top-level code (the grader's own __main__ raises
    SystemExit); resolving it would import that module in the trusted process."""
    import sys
    before = set(sys.modules)
    for tag in ("object", "namedtuple", "module"):
        reject({"t": tag, "cls": path, "state": {"t": "dict", "k": [], "v": []}, "v": [], "attrs": {}, "params": {},
                "buffers": {}, "children": {}})
    assert set(sys.modules) == before


def test_a_course_class_is_found_in_the_table_of_loaded_classes():
    assert codec.trusted_classes()["utils.models:BagOfWords"] is BagOfWords
    assert "torch.nn.modules.sparse:Embedding" in codec.trusted_classes()
    assert not any(path.startswith(("utils.grading", "builtins", "os:")) for path in codec.trusted_classes())


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt(), GeneratorExit(), RecursionError(),
                                   MemoryError()])
def test_anything_raised_while_decoding_a_reply_is_a_protocol_error(error):
    def from_handle(number, node):
        raise error

    with pytest.raises(codec.ProtocolError):
        codec.decode({"t": "list", "v": [{"t": "handle", "id": 0}]}, [], "harness", from_handle)


@pytest.mark.parametrize("dtype", ["O", "V8", "<M8[s]", "[('a', '<i4')]", "float64", "(2,)i4", 3])
def test_an_array_dtype_outside_numbers_and_text_is_refused_before_numpy_parses_it(dtype):
    reject({"t": "ndarray", "dtype": dtype, "shape": [1], "b": 0}, [b"\0" * 8])
