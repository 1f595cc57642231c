"""NumPy functions srcdiff writes with its own gates: var, std, linalg.norm, clip.

Each is lowered to the few gates of its definition, so its gradient comes from
the rules of those gates (and the generated code shows the definition).
"""
import ast

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


def _is_none(node):
    return isinstance(node, ast.Constant) and node.value is None


FUNCTIONS = {np.var: "var", np.std: "std"}
