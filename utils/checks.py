"""Helpers for the labs' self-checks that work the same in a student's Jupyter and in the autograder.

In the autograder a lab's tests run in another process than the student's code, and only data crosses between
them: a tensor returned by the student's function comes back without its autograd graph. A test that needs the
gradients of a student's computation asks for them with `backward_through`, which runs the backward pass where the
computation ran; the gradients then arrive in the arguments' `.grad`, as they would in one process.
"""

from __future__ import annotations

from typing import Any, Callable


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
