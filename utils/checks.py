"""Helpers for the labs' self-checks that work the same in a student's Jupyter and in the autograder.

In the autograder a lab's tests run in another process than the student's code, and only data crosses between
them: a tensor returned by the student's function comes back without its autograd graph. A test that needs the
gradients of a student's computation asks for them with `backward_through`, which runs the backward pass where the
computation ran; the gradients then arrive in the arguments' `.grad`, as they would in one process.

A lab is your own work: `LAB_LIBRARY` says which modules of the course library each lab may use (its setup needs
them) and which of their functions do what a question asks you to write. While a lab is graded, only those modules
are in the sandbox, with those functions disabled; `own_work` tells you at once when an answer calls one of them.
"""

from __future__ import annotations

import types
from typing import Any, Callable

#: Per lab: the course library's modules it may use, each with the names in it that answer one of its questions
#: (disabled while the lab is graded). Modules not listed are not available to the lab at all.
LAB_LIBRARY: dict[str, dict[str, tuple[str, ...]]] = {
    "lab1": {"data": (), "reproducibility": (), "text": ("Vocab",)},
    "lab2": {"data": (), "reproducibility": (), "text": ()},  # not utils.one_hot: it answers Questions 2 and 5
    "lab3": {"data": (), "models": (), "reproducibility": (), "text": (), "training": ()},
    "lab4": {"data": (), "models": (), "reproducibility": (), "text": (), "training": (),
             "similarity": ("cosine_similarity", "nearest_neighbours", "spearman", "word_similarity_correlation")},
    "lab5": {"data": (), "models": (), "reproducibility": (), "text": (), "training": ()},
    "lab6": {"data": (), "reproducibility": (), "text": (), "similarity": ("nearest_neighbours",),
             "analogies": ("complete_analogy", "analogy_scores", "solve_analogies"),
             "bias": ("weat_effect_size", "associations", "weat")},
}
for _modules in LAB_LIBRARY.values():  # every lab may use the labs' own helpers: these self-checks, the hints, the setup check
    _modules.update({"checks": (), "hints": (), "setup_check": ()})


def _library_uses(function: Any) -> set[str]:
    """'module.name' of everything of the course library an answer refers to (its own module if it is one)."""
    uses: set[str] = set()
    module = getattr(function, "__module__", None)
    if isinstance(module, str) and module.startswith("utils."):
        uses.add(f"{module.removeprefix('utils.')}.{getattr(function, '__name__', '?')}")
    code = getattr(function, "__code__", None)
    names: set[str] = set()
    codes = [code] if isinstance(code, types.CodeType) else []
    while codes:
        current = codes.pop()
        names.update(current.co_names)
        codes += [c for c in current.co_consts if isinstance(c, types.CodeType)]
    uses |= {f"{n.removeprefix('utils.')}.*" for n in names if n.startswith("utils.")}  # imports inside it
    scope = dict(getattr(function, "__globals__", {}) or {})
    for cell in getattr(function, "__closure__", None) or ():
        try:
            scope[f"<closure {len(scope)}>"] = cell.cell_contents
        except ValueError:
            continue
    for name, value in scope.items():
        if name not in names and not name.startswith("<closure"):
            continue
        if isinstance(value, types.ModuleType) and value.__name__.startswith("utils."):
            uses.add(f"{value.__name__.removeprefix('utils.')}.*")
        owner = getattr(value, "__module__", None)
        if isinstance(owner, str) and owner.startswith("utils.") and not isinstance(value, types.ModuleType):
            uses.add(f"{owner.removeprefix('utils.')}.{getattr(value, '__name__', name)}")
    return uses


def own_work(function: Any, lab: str) -> None:
    """Fail with a clear message when an answer uses what the course library may not give to `lab`.

    In the autograder the answer is not in this process (nothing to inspect) and the sandbox enforces the rule.
    """
    allowed = LAB_LIBRARY.get(lab)
    if allowed is None or not isinstance(getattr(function, "__code__", None), types.CodeType) and not str(
            getattr(function, "__module__", "")).startswith("utils."):
        return
    name = getattr(function, "__name__", "your answer")
    for use in sorted(_library_uses(function)):
        module, _, item = use.partition(".")
        if module not in allowed or item == "*" and allowed[module] or item in allowed[module]:
            raise AssertionError(
                f"{name} uses utils.{use.removesuffix('.*')} from the course library, which does this question's "
                f"work (or is not part of {lab}): write it yourself. When {lab} is graded it is not available, "
                f"and an answer that calls it fails.")


def backward_through(function: Callable[..., Any], *args: Any, upstream: Any = None, **kwargs: Any) -> Any:
    """Call `function(*args, **kwargs)` and backpropagate from its result (its sum, or `upstream`); return the result.

    The gradients land in the `.grad` of the tensors and modules passed as arguments.
    """
    remote = getattr(type(function), "__remote_backward__", None)
    if remote is not None:  # the function runs in the student's process (autograder): backpropagate there
        return remote(function, args, kwargs, upstream)
    result = function(*args, **kwargs)
    if upstream is None:
        result.sum().backward()
    else:
        result.backward(upstream)
    return result
