"""Where a generated gradient failed at run time, as a line of the user's function.

The generated code carries a `# line N: ...` comment before the statements of each
user line. When a call fails (shapes that do not broadcast, an index out of range),
the generated gradient is run again as plain Python (numba's errors carry no line),
the failing statement is found in the traceback, and the comment above it names
the user's line.
"""
import builtins
import functools
import linecache
import re
import warnings

import numpy as np

from .compile import load
from .errors import SrcdiffError, Where

LINE_COMMENT = re.compile(r"^\s*# (?:reverse of )?line (\d+)(?: of (.+?))?: ")
RUNTIME_ERRORS = (ValueError, IndexError, ZeroDivisionError, TypeError, AssertionError,
                  NameError)


def runtime_error(gradient, source, args, error):
    """A SrcdiffError for `error`, raised by the generated gradient of `gradient` on `args`."""
    found = failing_line(source, args, gradient.graph.filename)
    where, reason, in_backward = found if found else (gradient.graph.where, error, False)
    if in_backward and runs(gradient.fn, args):     # the fault is srcdiff's
        message = (f"the backward of `{gradient.__name__}` failed on these arguments "
                   f"({describe(gradient.params, args)}), which the function itself runs on: "
                   f"{type(reason).__name__}: {reason}")
        return SrcdiffError(message, where, hint="this is a srcdiff limitation worth reporting "
                            "(one known case: an array whose shape changes from one loop "
                            "iteration to the next)")
    raised = isinstance(reason, AssertionError) and re.match(r"([A-Z]\w*): ", str(reason))
    message = (f"`{gradient.__name__}` failed on these arguments ({describe(gradient.params, args)})"
               f": {'' if raised else type(reason).__name__ + ': '}{reason}")
    kind = getattr(builtins, raised.group(1), None) if raised else type(reason)
    error = error_class(kind if isinstance(kind, type) and issubclass(kind, Exception) else None)
    if isinstance(reason, AssertionError):
        return error(message, where, hint="an assert of the function does not hold for "
                     "these arguments, or it raised")
    if "changes shape in a loop" in str(reason):
        return error(message, where, hint="a known limitation: an array a loop binds "
                     "must keep its shape from one iteration to the next")
    if isinstance(reason, np.linalg.LinAlgError) and "NaN" in str(reason):
        return error(message, where, hint="a matrix of the function holds NaN or inf entries "
                     "here: numba's linear algebra refuses them, where NumPy's returns NaN "
                     "(compile=False runs NumPy's)")
    if isinstance(reason, np.linalg.LinAlgError):
        return error(message, where, hint="NumPy raises this too: a matrix of the function is "
                     "singular (or, for np.linalg.cholesky, not positive definite) at these "
                     "arguments")
    if isinstance(reason, NameError):      # as in Python: set only in a branch that did not run
        return error(message, where, hint="give the name a value before the `if` or loop "
                     "that sets it (a branch may not run, a loop may run no iteration)")
    return error(message, where, hint="check that the arguments' shapes fit together as "
                 "the function expects")


@functools.lru_cache(maxsize=None)
def error_class(kind):
    """SrcdiffError, also an instance of `kind` (ValueError for a user's `raise ValueError`, or a
    shape mismatch): `except ValueError` catches it, as it would the function's own error."""
    if kind is None or kind is Exception or issubclass(SrcdiffError, kind):
        return SrcdiffError
    try:
        return type("SrcdiffError", (SrcdiffError, kind), {"__module__": SrcdiffError.__module__})
    except TypeError:       # a layout the two cannot share
        return SrcdiffError


def runs(fn, args):
    """True if `fn` (the user's Python function) runs on copies of `args` without error."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    except Exception:
        return False
    return True


def failing_line(source, args, filename):
    """(Where of the user's line, the error, whether it is in the backward) for running
    `source`'s gradient in Python."""
    _, gradient = load(source, compiled=False)
    code = getattr(gradient, "__wrapped__", gradient).__code__
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gradient(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    except RUNTIME_ERRORS as error:
        lineno = last_line_in(error.__traceback__, code.co_filename)
        found = user_line(source.splitlines(), lineno) if lineno else None
        if found is None:
            return None
        line, filename = found[0], found[1] or filename
        text = linecache.getline(filename, line).rstrip("\n")
        col = len(text) - len(text.lstrip())
        in_backward = any(t.strip() == "# backward" for t in source.splitlines()[:lineno])
        return Where(filename, line, col, text), error, in_backward
    return None


def last_line_in(tb, filename):
    lineno = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno


def user_line(generated_lines, lineno):
    """(line, file or None for the function's own) of the user's line above `lineno`."""
    for text in reversed(generated_lines[:lineno]):
        match = LINE_COMMENT.match(text)
        if match:
            return int(match.group(1)), match.group(2)
    return None


def describe(params, args):
    parts = []
    for name, value in zip(params, args):
        if isinstance(value, np.ndarray):
            parts.append(f"{name}: {value.dtype}{list(value.shape)}")
        else:
            parts.append(f"{name}: {type(value).__name__}")
    return ", ".join(parts)
