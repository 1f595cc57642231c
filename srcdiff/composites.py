"""NumPy functions srcdiff writes with its own gates: var, std, linalg.norm, clip,
logaddexp, diff,
flip.

Each is lowered to the few gates of its definition, so its gradient comes from
the rules of those gates (and the generated code shows the definition).
"""
import ast
import math

import numpy as np

from .graph import Const


def variance(lw, node, gate, target, array=None):
    """var(x) = mean((x - mean(x))**2) over `axis`, times n / (n - ddof) with `ddof`;
    std(x) = sqrt(var(x))."""
    from .calls import reduction_operands
    ddof, node = _ddof(lw, node)
    x, axis, keepdims = reduction_operands(lw, node, array)
    mean = lw.emit("mean", [x], {"axis": axis, "keepdims": axis is not None}, node)
    centred = lw.emit("sub", [x, mean], {}, node)
    square = lw.emit("mul", [centred, centred], {}, node)
    last = target if gate == "var" else None
    var = lw.emit("mean", [square], {"axis": axis, "keepdims": keepdims}, node, None if ddof else last)
    if ddof:
        n = lw.emit("size", [x], {}, node) if axis is None else lw.emit("dim", [x], {"axis": axis}, node)
        scale = lw.emit("div", [n, lw.emit("sub", [n, Const(ddof)], {}, node)], {}, node)
        var = lw.emit("mul", [var, scale], {}, node, last)
    return var if gate == "var" else lw.emit("sqrt", [var], {}, node, target)


def _ddof(lw, node):
    """(ddof, the call without it) for np.var/np.std: `ddof=` must be a constant integer."""
    found = [k.value for k in node.keywords if k.arg == "ddof"]
    if not found:
        return 0, node
    if not (isinstance(found[0], ast.Constant) and type(found[0].value) is int and found[0].value >= 0):
        lw.fail("`ddof` must be a constant non-negative integer", found[0])
    stripped = ast.copy_location(ast.Call(node.func, node.args,
                                          [k for k in node.keywords if k.arg != "ddof"]), node)
    return found[0].value, stripped


def norm(lw, node, gate, target):
    """np.linalg.norm(x) (and over one axis): sqrt(sum(x * x)), the 2-norm of a vector."""
    from .calls import reduction_operands
    order = [k for k in node.keywords if k.arg == "ord"]
    if order or len(node.args) > 1:
        lw.fail("`np.linalg.norm`: only the default 2-norm (with `axis`, `keepdims`) is supported",
                node, hint="write other norms out, e.g. np.sum(np.abs(x)) for the 1-norm")
    node = ast.Call(node.func, node.args, [k for k in node.keywords if k.arg != "ord"])
    ast.copy_location(node, node.func)
    x, axis, keepdims = reduction_operands(lw, node, None)
    square = lw.emit("mul", [x, x], {}, node)
    total = lw.emit("sum", [square], {"axis": axis, "keepdims": keepdims}, node)
    return lw.emit("sqrt", [total], {}, node, target)


def clip(lw, node, gate, target):
    """np.clip(x, lo, hi) = minimum(maximum(x, lo), hi); a bound of None is left out."""
    if len(node.args) != 3 or node.keywords:
        lw.fail("`np.clip` takes 3 arguments here (x, lower, upper)", node)
    x, lo, hi = node.args
    out = lw.expr(x, None)
    if not _is_none(lo):
        out = lw.emit("maximum", [out, lw.expr(lo, None)], {}, node, None if _is_none(hi) else target)
    if not _is_none(hi):
        out = lw.emit("minimum", [out, lw.expr(hi, None)], {}, node, target)
    return out


def logaddexp(lw, node, gate, target):
    """np.logaddexp(a, b) = m + log(exp(a - m) + exp(b - m)), m = maximum(a, b)."""
    if len(node.args) != 2 or node.keywords:
        lw.fail("`np.logaddexp` takes 2 arguments here", node)
    a, b = (lw.expr(x, None) for x in node.args)
    m = lw.emit("maximum", [a, b], {}, node)
    total = lw.emit("add", [lw.emit("exp", [lw.emit("sub", [a, m], {}, node)], {}, node),
                            lw.emit("exp", [lw.emit("sub", [b, m], {}, node)], {}, node)], {}, node)
    return lw.emit("add", [m, lw.emit("log", [total], {}, node)], {}, node, target)


def diff(lw, node, gate, target):
    """np.diff(x) = x[1:] - x[:-1] (1-D x); np.diff(x, axis=0) the same for any rank; with
    n (np.diff(x, 2) or n=2), that n times over."""
    from .calls import constant_option
    options = {k.arg: k.value for k in node.keywords}
    if not 1 <= len(node.args) <= 2 or set(options) - {"axis", "n"} \
            or len(node.args) == 2 and "n" in options:
        lw.fail("`np.diff` takes an array, n and `axis=` here", node)
    axis = constant_option(lw, options.get("axis"), -1, "axis", (int,))
    if axis not in (0, -1):
        lw.fail("`np.diff` is supported along axis 0 (and the last axis of a 1-D array)", node,
                hint="transpose first: np.diff(x.T, axis=0).T")
    given = node.args[1] if len(node.args) == 2 else options.get("n")
    times = constant_option(lw, given, 1, "n", (int,))
    if times < 0:
        lw.fail("`np.diff` takes n >= 0", node)
    check = {"only_1d": "np.diff(x) without axis=0",
             "hint_1d": "pass axis=0, or transpose: np.diff(x.T, axis=0).T for the last axis"} \
        if axis == -1 else {}
    x = lw.expr(node.args[0], None)
    for k in range(times):
        after = lw.emit("index", [x, Const(1)], {"index": (("slice", True, False, False),),
                                                 **check}, node)
        before = lw.emit("index", [x, Const(-1)], {"index": (("slice", False, True, False),)}, node)
        x = lw.emit("sub", [after, before], {}, node, target if k == times - 1 else None)
    return x if times else lw.emit("copy", [x], {}, node, target)


def full(lw, node, gate, target):
    """np.full(shape, value) = np.zeros(shape) + value (the value's gradient is the sum of
    g), and np.full_like(x, value) = np.zeros_like(x) + value."""
    from .calls import dtype_option, shape_operands
    if len(node.args) != 2 or any(k.arg != "dtype" for k in node.keywords) \
            or gate == "full_like" and node.keywords:
        lw.fail(f"`{ast.unparse(node.func)}` takes a {'shape' if gate == 'full' else 'array'} "
                "and a value here", node)
    if gate == "full_like":
        zeros = lw.emit("zeros_like", [lw.expr(node.args[0], None)], {}, node)
        return lw.emit("add", [zeros, lw.expr(node.args[1], None)], {}, node, target)
    args, layout = shape_operands(lw, node.args[0])
    value = lw.expr(node.args[1], None)
    whole = isinstance(value, Const) and type(value.value) is int     # as NumPy: an int array
    dtype = dtype_option(lw, node) if node.keywords else "int64" if whole else "float64"
    zeros = lw.emit("zeros", args, {"shape": layout, "dtype": dtype}, node)
    return lw.emit("add", [zeros, value], {}, node, target)


ANGLE_FACTORS = {"radians": math.pi / 180.0, "degrees": 180.0 / math.pi}


def angle(lw, node, gate, target):
    """np.radians(x) (np.deg2rad, math.radians) = x * pi / 180, and np.degrees the inverse."""
    if len(node.args) != 1 or node.keywords:
        lw.fail(f"`{ast.unparse(node.func)}` takes one argument here", node)
    return lw.emit("mul", [lw.expr(node.args[0], None), Const(ANGLE_FACTORS[gate])], {}, node, target)


def trapezoid(lw, node, gate, target):
    """np.trapezoid(y, x) = sum((y[1:] + y[:-1]) * (x[1:] - x[:-1])) / 2 (with `dx=` or 1.0
    for the spacing), of vectors."""
    options = {k.arg: k.value for k in node.keywords}
    if not 1 <= len(node.args) <= 2 or set(options) - {"x", "dx"} or len(node.args) == 2 and "x" in options:
        lw.fail("`np.trapezoid` takes y, and x or dx=, here (no axis: vectors)", node)
    check = {"only_1d": "np.trapezoid(y)", "hint_1d": "integrate each row in a loop"}
    y = lw.expr(node.args[0], None)
    heights = lw.emit("add", [_after_first(lw, y, node, check), _before_last(lw, y, node)], {}, node)
    x = node.args[1] if len(node.args) == 2 else options.get("x")
    if x is not None:
        xs = lw.expr(x, None)
        widths = lw.emit("sub", [_after_first(lw, xs, node, check), _before_last(lw, xs, node)], {}, node)
    else:
        widths = lw.expr(options["dx"], None) if "dx" in options else Const(1.0)
    areas = lw.emit("mul", [heights, widths], {}, node)
    total = lw.emit("sum", [areas], {"axis": None, "keepdims": False}, node)
    return lw.emit("mul", [total, Const(0.5)], {}, node, target)


def flip(lw, node, gate, target):
    """np.flip(x, axis) = x[:, ..., ::-1] (the reversed slice at `axis`); np.flip(x) of a
    vector = x[::-1]; np.flipud(x) = np.flip(x, 0), np.fliplr(x) = np.flip(x, 1)."""
    from .calls import constant_option
    options = {k.arg: k.value for k in node.keywords}
    takes_axis = gate == "flip"
    if len(node.args) not in (1, 2) or set(options) - {"axis"} \
            or not takes_axis and len(node.args) + len(options) > 1:
        what = "an array and an axis" if takes_axis else "an array"
        lw.fail(f"`{ast.unparse(node.func)}` takes {what} here", node)
    given = node.args[1] if len(node.args) == 2 else options.get("axis")
    axis = {"flipud": 0, "fliplr": 1}.get(gate) if not takes_axis else \
        constant_option(lw, given, None, "axis", (int, type(None)))
    if axis is not None and axis < 0:
        lw.fail("`np.flip` takes a non-negative axis here", node,
                hint="count the axes from the front")
    whole = ("slice", False, False, False)
    index = (whole,) * (axis or 0) + (("slice", False, False, True),)
    check = {} if axis is not None else {
        "only_1d": "np.flip(x) without an axis",
        "hint_1d": "flip one axis at a time: np.flip(np.flip(x, 0), 1)"}
    return lw.emit("index", [lw.expr(node.args[0], None), Const(-1)], {"index": index, **check},
                   node, target)


def _after_first(lw, x, node, check):
    return lw.emit("index", [x, Const(1)], {"index": (("slice", True, False, False),), **check}, node)


def _before_last(lw, x, node):
    return lw.emit("index", [x, Const(-1)], {"index": (("slice", False, True, False),)}, node)


def _is_none(node):
    return isinstance(node, ast.Constant) and node.value is None


FUNCTIONS = {np.var: "var", np.std: "std"}
EXTRA = {np.logaddexp: logaddexp, np.diff: diff}
FLIPS = {np.flip: "flip", np.flipud: "flipud", np.fliplr: "fliplr"}
