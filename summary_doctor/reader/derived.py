"""Results derived from a run once and shared: ``@per_run`` memoises a pure function of a run.

Every rule starts from the same few tables (which tag is the loss, each
histogram tag's kind and layer order, the rows of weight tags...). Computed
anew by each of the ~20 rules, they were about a third of a diagnosis; a run
never changes once read, so each is computed once and kept in ``run.derived``.
Frames and arrays are handed out as copies, so a caller that edits its copy
cannot change what the next rule sees. Under pandas' copy-on-write (always on
from pandas 3) a frame's copy is shallow: an edit then copies what it
touches, and the deep copies that were a tenth of a small run's diagnosis
are not made.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def private_copy(value: Any) -> Any:
    copy = getattr(value, "copy", None)
    if not callable(copy):
        return value
    if type(value).__module__.startswith("pandas") and _copy_on_write():
        return copy(deep=False)
    return copy()


@functools.cache
def _copy_on_write() -> bool:
    """Whether pandas copies a shared frame when it is edited (pandas >= 3, or the 2.x option set)."""
    pandas = sys.modules["pandas"]
    if int(pandas.__version__.split(".")[0]) >= 3:
        return True
    return pandas.get_option("mode.copy_on_write") is True


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
        return private_copy(value)

    return wrapper  # type: ignore[return-value]
