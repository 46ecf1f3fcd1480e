"""The codec between harness and student: faithful round trips, and a harness side that accepts data only."""

from __future__ import annotations

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


def test_the_harness_sends_functions_as_code_or_by_name():
    f = harness_to_student(lambda v: F.relu(v) * torch.tensor(2.0))
    assert torch.equal(f(torch.tensor([-1.0, 3.0])), torch.tensor([0.0, 6.0]))
    assert harness_to_student(F.embedding) is F.embedding
    assert harness_to_student(torch.tensor) is torch.tensor
    assert harness_to_student(nn.Embedding) is nn.Embedding


@pytest.mark.parametrize("tag", ["code", "ref", "pymodule", "cache", "cached"])
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
    words = ["a"]
    copy_back(words, ["a", "b"])
    assert words == ["a", "b"]


def test_bound_names_are_the_definitions_and_assignments_of_a_cell():
    source = "import os\nfrom x import y\nA, (B, C) = 1, (2, 3)\nD: int = 4\ndef f():\n    inner = 1\nclass K:\n    pass\n%time 1"
    assert bound_names(source) == {"A", "B", "C", "D", "f", "K"}
