"""Results derived from a run once and shared: ``@per_run`` memoises a pure function of a run.

Every rule starts from the same few tables (which tag is the loss, each
histogram tag's kind and layer order, the rows of weight tags...). Computed
anew by each of the ~20 rules, they were about a third of a diagnosis; a run
never changes once read, so each is computed once and kept in ``run.derived``.
Frames and arrays are handed out as copies, so a caller that edits its copy
cannot change what the next rule sees.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def _private(value: Any) -> Any:
    copy = getattr(value, "copy", None)
    return copy() if callable(copy) else value


def per_run(function: F) -> F:
    """Memoise ``function(run, *args, **kwargs)`` in ``run.derived``; arguments must be hashable."""
    name = f"{function.__module__}.{function.__qualname__}"

    @functools.wraps(function)
    def wrapper(run: Any, *args: Any, **kwargs: Any) -> Any:
        key = (name, args, tuple(sorted(kwargs.items())))
        try:
            value = run.derived[key]
        except KeyError:
            value = run.derived[key] = function(run, *args, **kwargs)
        except TypeError:  # an unhashable argument: nothing to share
            return function(run, *args, **kwargs)
        return _private(value)

    return wrapper  # type: ignore[return-value]
