"""Calls and array attributes in user code -> IR gates (a table per kind of callee)."""
import ast
import builtins
import math
import sys
import types

import numpy as np

from . import composites, nn
from .errors import UndefinedName
from .graph import Const
from .source import plain_function

ELEMENTWISE = {
    np.exp: "exp", np.log: "log", np.sqrt: "sqrt", np.sin: "sin", np.cos: "cos", np.tan: "tan",
    np.tanh: "tanh", np.abs: "abs", np.absolute: "abs", np.log1p: "log1p", np.expm1: "expm1",
    np.sign: "sign", np.square: "square", np.negative: "neg", np.arctan: "arctan",
    np.sinh: "sinh", np.cosh: "cosh", np.floor: "floor", np.ceil: "ceil", np.cumsum: "cumsum",
    np.cumprod: "cumprod",
    math.exp: "exp", math.log: "log", math.sqrt: "sqrt", math.sin: "sin", math.cos: "cos",
    math.tan: "tan", math.tanh: "tanh", math.fabs: "abs", math.log1p: "log1p", math.expm1: "expm1",
    math.atan: "arctan", math.sinh: "sinh", math.cosh: "cosh", math.floor: "floor", math.ceil: "ceil",
    builtins.abs: "abs", nn.relu: "relu", nn.sigmoid: "sigmoid", np.logical_not: "not",
    np.arcsin: "arcsin", np.arccos: "arccos", np.arcsinh: "arcsinh", np.arccosh: "arccosh",
    np.arctanh: "arctanh", np.log10: "log10", np.log2: "log2", np.exp2: "exp2", np.cbrt: "cbrt",
    math.asin: "arcsin", math.acos: "arccos", math.asinh: "arcsinh", math.acosh: "arccosh",
    math.atanh: "arctanh", math.log10: "log10", math.log2: "log2", math.exp2: "exp2",
    math.cbrt: "cbrt", math.erf: "erf", math.erfc: "erfc", math.lgamma: "lgamma", np.round: "round", np.rint: "round",
    np.isfinite: "isfinite", np.isnan: "isnan", np.isinf: "isinf", math.isfinite: "isfinite",
    math.isnan: "isnan", math.isinf: "isinf",
}
BINARY = {
    np.maximum: "maximum", np.minimum: "minimum", np.dot: "matmul", np.matmul: "matmul",
    np.power: "pow", math.pow: "pow", np.add: "add", np.subtract: "sub", np.multiply: "mul",
    np.divide: "div", np.outer: "outer", np.arctan2: "arctan2", math.atan2: "arctan2",
    np.logical_and: "and", np.logical_or: "or", np.hypot: "hypot", math.hypot: "hypot",
    nn.softmax_cross_entropy: "softmax_cross_entropy",
}
REDUCTIONS = {np.sum: "sum", np.mean: "mean", np.max: "max", np.min: "min", np.amax: "max",
              np.amin: "min", nn.logsumexp: "logsumexp", nn.softmax: "softmax",
              nn.log_softmax: "log_softmax"}
CREATION = {np.zeros: "zeros", np.ones: "ones", np.empty: "empty"}
LIKE = {np.zeros_like: "zeros_like", np.ones_like: "ones_like", np.empty_like: "empty_like",
        np.copy: "copy_array"}
METHODS = {"copy": "copy_array", "sum": "sum", "mean": "mean", "max": "max", "min": "min",
           "transpose": "transpose", "reshape": "reshape", "dot": "matmul", "var": "var",
           "std": "std", "ravel": "ravel", "flatten": "flatten", "astype": "astype"}
# methods that are the NumPy function of the same name with the array first
FUNCTION_METHODS = {"prod": np.prod, "cumsum": np.cumsum, "cumprod": np.cumprod, "clip": np.clip,
                    "argmax": np.argmax, "argmin": np.argmin, "trace": np.trace}
AXIS_DEFAULT = {"softmax": -1, "log_softmax": -1}
NOT_NUMERIC_MODULES = ("numpy.random", "random")


def lower_call(lw, node, target):
    """Lower `node` (an ast.Call) and return the operand holding its value."""
    func = node.func
    if isinstance(func, ast.Attribute) and is_computed(lw, func.value):
        return method_call(lw, node, target)
    callee = plain_function(lw.static_value(func))
    if callee is None and isinstance(func, ast.Name) and func.id not in lw.env \
            and func.id not in lw.scope:
        raise UndefinedName(f"`{func.id}` is not defined here", lw.where(func),
                            hint="define it at module level (or import it) before the first call")
    if callee is None:
        lw.fail(f"cannot tell which function `{ast.unparse(func)}` is", func,
                hint="call NumPy/math functions through their module (np.exp), or a function "
                     "defined at module level")
    try:
        hash(callee)
    except TypeError:
        lw.fail(f"`{ast.unparse(func)}` is not a function srcdiff knows", func)
    known = dispatched(lw, callee, node, target)
    if known is not None:
        return known
    special = scipy_special(callee)
    if special:
        return special[1](lw, node, special[0], target)
    if callee in (builtins.min, builtins.max):
        return min_max(lw, node, "minimum" if callee is builtins.min else "maximum", target)
    if callee in SCALAR_CASTS:
        return SCALAR_CASTS[callee](lw, node, target)
    if isinstance(callee, types.FunctionType) and not is_library(callee):
        return inline(lw, callee, node, target)
    name = ast.unparse(func)
    lw.fail(f"`{name}` is not supported by srcdiff", func,
            hint=REWRITES.get(getattr(callee, "__name__", None) if is_library(callee) else None,
                              "use the NumPy/math functions listed in the README, or write it "
                              "with them in a helper function of your own"))


# how to write common NumPy functions srcdiff does not take with ones it does
REWRITES = {
    "average": "write it out: np.sum(w * x) / np.sum(w) (or np.mean(x) without weights)",
    "einsum": "write it with @, .T and np.sum of products, e.g. 'ij,jk->ik' is A @ B and "
              "'ij,ij->i' is np.sum(A * B, axis=1)",
    "tensordot": "reshape to matrices and use @",
    "inner": "for vectors, np.dot(a, b) or a @ b",
    "vdot": "for real vectors, np.dot(a, b) or a @ b",
    "kron": "write it with np.outer and a reshape, or build it in a loop",
    "tile": "np.concatenate((x, x)) joins copies; or index: x[np.arange(n) % x.shape[0]]",
    "repeat": "index: x[np.arange(n * k) // k] repeats each entry k times",
    "heaviside": "np.where(x > 0, 1.0, 0.0) (its gradient is zero)",
    "fmax": "np.maximum(a, b) (it takes NaNs where np.fmax skips them)",
    "fmin": "np.minimum(a, b) (it takes NaNs where np.fmin skips them)",
    "sinc": "write it out: np.sin(np.pi * x) / (np.pi * x) away from 0",
    "nansum": "select the entries first: np.sum(x[~np.isnan(x)])",
    "nanmean": "select the entries first: np.mean(x[~np.isnan(x)])",
    "argsort": "np.sort(x) sorts a vector; its gradient follows the entries",
    "percentile": "for the median use np.median; otherwise sort a vector and index it",
    "quantile": "for the median use np.median; otherwise sort a vector and index it",
    "matrix_power": "multiply it out with @ in a loop",
    "cumulative_sum": "np.cumsum(x)",
}


def dispatched(lw, callee, node, target):
    """The operand of `node`, a call of the NumPy function `callee` a DISPATCH table lists, or
    None if none does."""
    for table, lower in DISPATCH:
        if callee in table:
            return lower(lw, node, table[callee], target)
    return None


def scipy_special(callee):
    """(gate, lowering) of a scipy.special function srcdiff writes with its own gates, if
    `callee` is one (looked up only where the user's module imported scipy.special)."""
    special = sys.modules.get("scipy.special")
    for name, entry in SCIPY_SPECIAL.items():
        if special is not None and callee is getattr(special, name, None):
            return entry
    return None


def is_computed(lw, node):
    """True if `node` is a value the function computes (`x`, `np.sin(x)`, `x[0:2]`, `x.T`),
    not a module or global it names (`np`, `np.random`, `math.pi`)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return not isinstance(node, ast.Name) or node.id in lw.scope


def is_library(fn):
    module = getattr(fn, "__module__", "") or ""
    return module.split(".")[0] in ("numpy", "math", "scipy", "numba", "builtins", "random")


def positional(lw, node, count, what):
    if len(node.args) != count or any(k.arg not in ("axis", "keepdims", "dtype") for k in node.keywords):
        lw.fail(f"`{ast.unparse(node.func)}` takes {count} {what} here", node)
    return [lw.expr(a, None) for a in node.args]


def elementwise(lw, node, gate, target):
    if gate == "log" and len(node.args) == 2 and not node.keywords \
            and lw.static_value(node.func) is math.log:       # math.log(x, base)
        x, base = (lw.emit("log", [lw.expr(a, None)], {}, node, None) for a in node.args)
        return lw.emit("div", [x, base], {}, node, target)
    if len(node.args) != 1 or node.keywords:
        hint = (f"np.{gate} runs over the flattened array (no `axis`): down the rows of a "
                "matrix, loop over its rows" if gate in ("cumsum", "cumprod") else None)
        lw.fail(f"`{ast.unparse(node.func)}` takes one argument here", node, hint)
    return lw.emit(gate, [lw.expr(node.args[0], None)], {}, node, target)


def binary(lw, node, gate, target):
    return lw.emit(gate, positional(lw, node, 2, "arguments"), {}, node, target)


def min_max(lw, node, gate, target):
    """Builtin min/max of two or more values, folded pairwise: min(a, b, c) = min(min(a, b), c);
    of one array, its least or largest entry along the first axis, as Python iterates it."""
    if len(node.args) == 1 and not node.keywords:
        return lw.emit(gate[:3], [lw.expr(node.args[0], None)], {"axis": 0, "keepdims": False},
                       node, target)
    if len(node.args) < 2 or node.keywords:
        lw.fail(f"`{ast.unparse(node.func)}` takes two or more scalars here", node,
                hint="for the largest entry of an array use np.max(x); elementwise, np.maximum(a, b)")
    result = lw.expr(node.args[0], None)
    for k, arg in enumerate(node.args[1:], start=2):
        out = target if k == len(node.args) else None
        result = lw.emit(gate, [result, lw.expr(arg, None)], {}, node, out)
    return result


def where(lw, node, gate, target):
    return lw.emit("where", positional(lw, node, 3, "arguments"), {}, node, target)


def reduction(lw, node, gate, target, array=None):
    several = gate in ("sum", "mean")
    array, axis, keepdims = reduction_operands(lw, node, array, AXIS_DEFAULT.get(gate), several)
    axes = one_at_a_time(lw, node, axis, keepdims) if isinstance(axis, tuple) else (axis,)
    for k, one in enumerate(axes):
        out = target if k == len(axes) - 1 else None
        array = lw.emit(gate, [array], {"axis": one, "keepdims": keepdims}, node, out)
    return array


def one_at_a_time(lw, node, axes, keepdims):
    """The axes of a sum or mean over several, in an order that reduces them one at a time:
    from the last (or, for negative axes, the first), so the others keep their numbers."""
    if not axes or len(set(axes)) != len(axes) or not all(type(a) is int for a in axes):
        lw.fail(f"`axis={axes}` must name distinct axes", node)
    if keepdims or all(a >= 0 for a in axes):
        return tuple(sorted(axes, reverse=True))
    if all(a < 0 for a in axes):
        return tuple(sorted(axes))
    lw.fail(f"`axis={axes}` mixes axes counted from the start and from the end", node,
            hint="count them all from the start (or all from the end)")


def reduction_operands(lw, node, array, default_axis=None, several=False):
    """(array operand, constant axis, keepdims) of `np.f(x, axis, keepdims=...)` or `x.f(...)`;
    the axis may be a tuple if `several`."""
    args = list(node.args)
    options = {k.arg: k.value for k in node.keywords}
    function_form = array is None      # np.max(x, ...), not x.max(...)
    if array is None:
        if not args:
            named = "a" in options
            lw.fail(f"`{ast.unparse(node.func)}` needs an array as its first argument", node,
                    hint=f"pass the array by position: `{ast.unparse(node.func)}(x)`" if named else None)
        array = lw.expr(args.pop(0), None)
    if args:
        options["axis"] = args.pop(0)
    unknown = set(options) - {"axis", "keepdims"}
    if unknown or args:
        lw.fail(f"`{ast.unparse(node.func)}`: only `axis` and `keepdims` are supported", node)
    if isinstance(options.get("axis"), (ast.Name, ast.Attribute, ast.Subscript, ast.BinOp, ast.Call)) \
            and function_form and getattr(node.func, "attr", "") in ("max", "min"):
        what = "maximum" if node.func.attr == "max" else "minimum"
        lw.fail(f"the second argument of `{ast.unparse(node.func)}` is the axis to reduce along, "
                "and it must be a constant", options["axis"],
                hint=f"for the elementwise {what} of two arrays use `np.{what}(a, b)`")
    kinds = (int, type(None), tuple) if several else (int, type(None))
    axis = constant_option(lw, options.get("axis"), default_axis, "axis", kinds)
    keepdims = constant_option(lw, options.get("keepdims"), False, "keepdims", (bool,))
    return array, axis, keepdims


def constant_option(lw, node, default, name, kinds):
    if node is None:
        return default
    try:
        value = ast.literal_eval(node)
    except ValueError:
        value = object()
    if not isinstance(value, kinds):
        if isinstance(value, tuple):
            lw.fail(f"`{name}` is a tuple: only sums and means reduce over several axes at once",
                    node, hint="reduce one axis at a time, e.g. np.max(np.max(x, axis=2), axis=1)")
        lw.fail(f"`{name}` must be a constant ({' or '.join(k.__name__ for k in kinds)})", node)
    return value


def creation(lw, node, gate, target):
    if not node.args or len(node.args) > 1 or any(k.arg != "dtype" for k in node.keywords):
        lw.fail(f"`{ast.unparse(node.func)}` takes a shape (and `dtype=`) here", node)
    args, layout = shape_operands(lw, node.args[0])
    like = next((k.value.value for k in node.keywords if isinstance(k.value, ast.Attribute)
                 and k.value.attr == "dtype" and is_computed(lw, k.value.value)), None)
    if like is not None:        # np.zeros(n, dtype=x.dtype): made in float64, then in x's dtype
        made = lw.emit(gate, args, {"shape": layout, "dtype": "float64"}, node)
        return lw.emit("dtype_of", [made, lw.expr(like, None)], {}, node, target)
    params = {"shape": layout, "dtype": dtype_option(lw, node)}
    return lw.emit(gate, args, params, node, target)


def array_of_numbers(lw, node, gate, target):
    """np.array([a, b, ...]) or np.array([[a, b], [c, d]]) of numbers: one gate, whose adjoint
    hands each number its entry."""
    rows = node.args[0] if len(node.args) == 1 and all(k.arg == "dtype" for k in node.keywords) \
        else None
    if rows is not None and not isinstance(rows, (ast.List, ast.Tuple)):
        return array_of_an_array(lw, node, gate, rows, target)
    if not isinstance(rows, (ast.List, ast.Tuple)) or not rows.elts:
        lw.fail(f"`{ast.unparse(node.func)}` takes a list of numbers here (or a list of such "
                "lists)", node, hint="for a copy of an array use x.copy(); to join arrays, "
                                     "write them into one made with np.empty")
    nested = [isinstance(e, (ast.List, ast.Tuple)) for e in rows.elts]
    if any(nested):
        if not all(nested) or len({len(e.elts) for e in rows.elts}) != 1 or not rows.elts[0].elts:
            lw.fail("the rows of this array differ in length, or are mixed with numbers", rows)
        shape = (len(rows.elts), len(rows.elts[0].elts))
        items = [item for row in rows.elts for item in row.elts]
    else:
        shape, items = (len(rows.elts),), rows.elts
    dtype = dtype_option(lw, node) if node.keywords else None
    return lw.emit(gate, [lw.expr(e, None) for e in items], {"shape": shape, "dtype": dtype}, node,
                   target)


def array_of_an_array(lw, node, gate, value, target):
    """np.asarray(x) is x itself, np.array(x) a copy of it; with `dtype=`, x in that dtype."""
    x = lw.expr(value, None)
    if isinstance(x, Const):
        lw.fail(f"`{ast.unparse(node.func)}` of a number is not supported", node,
                hint="use the number itself, or np.array([x]) for an array of one entry")
    if node.keywords:
        return lw.emit("astype", [x], {"dtype": dtype_option(lw, node)}, node, target)
    return x if lw.static_value(node.func) is np.asarray else lw.emit("copy_array", [x], {}, node, target)


def joined(lw, node, gate, target):
    """np.concatenate((a, b, ...), axis=k) and np.stack(...) of arrays: one gate; np.hstack,
    np.vstack and np.column_stack, with no axis."""
    items = node.args[0] if node.args else None
    options = {k.arg: k.value for k in node.keywords}
    if gate in ("hstack", "vstack", "column_stack"):
        if not isinstance(items, (ast.List, ast.Tuple)) or not items.elts or len(node.args) > 1 \
                or options:
            lw.fail(f"`{ast.unparse(node.func)}` takes a list or tuple of arrays here", node)
        return lw.emit(gate, [lw.expr(e, None) for e in items.elts], {}, node, target)
    if len(node.args) == 2:
        options["axis"] = node.args[1]
    if not isinstance(items, (ast.List, ast.Tuple)) or not items.elts or len(node.args) > 2 \
            or set(options) - {"axis"}:
        lw.fail(f"`{ast.unparse(node.func)}` takes a list or tuple of arrays (and `axis=`) here",
                node)
    axis = constant_option(lw, options.get("axis"), 0, "axis", (int,))
    return lw.emit(gate, [lw.expr(e, None) for e in items.elts], {"axis": axis}, node, target)


def shape_operands(lw, node):
    """(operands, layout) for a shape argument: an int, a tuple of ints, or `x.shape`."""
    if isinstance(node, ast.Attribute) and node.attr == "shape":
        return [lw.expr(node.value, None)], ("of",)
    if isinstance(node, ast.Tuple):
        return [lw.expr(e, None) for e in node.elts], ("tuple", len(node.elts))
    return [lw.expr(node, None)], ("tuple", 1)


def dtype_option(lw, node):
    for k in node.keywords:
        if k.arg == "dtype":
            value = lw.static_value(k.value)
            if value in (np.float64, np.float32, np.int64, float, int):
                return np.dtype(value).name
            lw.fail("`dtype` must be np.float64, np.float32, np.int64, float or int", k.value)
    return "float64"


def like(lw, node, gate, target):
    if len(node.args) != 1 or node.keywords:
        lw.fail(f"`{ast.unparse(node.func)}` takes one array here", node)
    return lw.emit(gate, [lw.expr(node.args[0], None)], {}, node, target)


def transpose_call(lw, node, gate, target):
    if len(node.args) != 1 or node.keywords:
        lw.fail("only `np.transpose(x)` (reversing all axes) is supported", node)
    return lw.emit("transpose", [lw.expr(node.args[0], None)], {}, node, target)


def ravel_call(lw, node, gate, target):
    """np.ravel(x), as x.ravel()."""
    if len(node.args) != 1 or node.keywords:
        lw.fail("`np.ravel` takes one array here", node)
    method = ast.Call(ast.Attribute(node.args[0], "ravel", ast.Load()), [], [])
    return method_call(lw, ast.copy_location(method, node), target)


def reciprocal(lw, node, gate, target):
    """np.reciprocal(x) = 1.0 / x."""
    if len(node.args) != 1 or node.keywords:
        lw.fail("`np.reciprocal` takes one argument here", node)
    return lw.emit("div", [Const(1.0), lw.expr(node.args[0], None)], {}, node, target)


def reshape_call(lw, node, gate, target):
    if len(node.args) != 2 or node.keywords:
        lw.fail("`np.reshape(x, shape)` takes two arguments here", node)
    array = lw.expr(node.args[0], None)
    args, layout = shape_operands(lw, node.args[1])
    return lw.emit("reshape", [array] + args, {"shape": layout}, node, target)


def method_call(lw, node, target):
    name = node.func.attr
    if name in FUNCTION_METHODS:      # x.prod() is np.prod(x)
        function = ast.copy_location(ast.Attribute(ast.Name("np", ast.Load()), name, ast.Load()),
                                     node.func)
        call = ast.Call(function, [node.func.value, *node.args], node.keywords)
        call = ast.copy_location(call, node)
        return dispatched(lw, FUNCTION_METHODS[name], call, target)
    gate = METHODS.get(name)
    if gate is None:
        lw.fail(f"the array method `.{name}()` is not supported", node.func,
                hint="supported methods: " + ", ".join(f".{m}()" for m in [*METHODS,
                                                                          *FUNCTION_METHODS]))
    array = array_operand(lw, node.func)
    if gate in ("sum", "mean", "max", "min"):
        return reduction(lw, node, gate, target, array=array)
    if gate in ("var", "std"):
        return composites.variance(lw, node, gate, target, array=array)
    if gate == "reshape":
        shape = node.args[0] if len(node.args) == 1 else ast.Tuple(elts=node.args, ctx=ast.Load())
        args, layout = shape_operands(lw, shape)
        return lw.emit("reshape", [array] + args, {"shape": layout}, node, target)
    if gate == "matmul":
        return lw.emit("matmul", [array] + positional(lw, node, 1, "argument"), {}, node, target)
    if gate in ("ravel", "flatten"):
        if node.args or node.keywords:
            lw.fail(f"`.{name}()` takes no arguments here", node)
        size = lw.emit("size", [array], {}, node)
        flat = lw.emit("reshape", [array, size], {"shape": ("tuple", 1)}, node,
                       target if gate == "ravel" else None)
        return flat if gate == "ravel" else lw.emit("copy_array", [flat], {}, node, target)
    if gate == "astype":
        if len(node.args) != 1 or node.keywords:
            lw.fail("`.astype()` takes one dtype here", node)
        dtype = dtype_option(lw, ast.Call(node.func, [], [ast.keyword("dtype", node.args[0])]))
        return lw.emit("astype", [array], {"dtype": dtype}, node, target)
    if node.args or node.keywords:
        hint = "srcdiff reverses all axes (.T); for another order, index or loop" \
            if name == "transpose" else None
        lw.fail(f"`.{name}()` takes no arguments here", node, hint=hint)
    return lw.emit(gate, [array], {}, node, target)


def array_operand(lw, node):
    """The operand of `node.value` in `x.attr` or `x.method(...)`: anything but a plain number."""
    array = lw.expr(node.value, None)
    if isinstance(array, Const):
        lw.fail(f"`.{node.attr}` needs an array, and `{ast.unparse(node.value)}` is a number", node,
                hint="methods and `.T`, `.size`, `.ndim` apply to arrays")
    return array


def array_attribute(lw, node, target):
    array = array_operand(lw, node)
    if node.attr == "T":
        return lw.emit("transpose", [array], {}, node, target)
    if node.attr == "size":
        return lw.emit("size", [array], {}, node, target)
    if node.attr == "ndim":
        return lw.emit("ndim", [array], {}, node, target)
    hint = "use x.shape[k] or `n, m = x.shape`" if node.attr == "shape" else (
        f"srcdiff takes arrays and numbers, not objects: pass `{ast.unparse(node)}` as an argument")
    lw.fail(f"the attribute `.{node.attr}` is not supported here", node, hint=hint)


def cast(gate):
    def lower(lw, node, target):
        if len(node.args) != 1 or node.keywords:
            lw.fail(f"`{gate}()` takes one argument here", node)
        return lw.emit(gate, [lw.expr(node.args[0], None)], {}, node, target)
    return lower


def ranges(lw, node, gate, target):
    """np.arange(stop), np.arange(start, stop[, step]), np.linspace(a, b[, num]), np.eye(n):
    always with all their bounds (numba's forms)."""
    low, high = {"arange": (1, 3), "linspace": (2, 3), "eye": (1, 1)}[gate]
    if not low <= len(node.args) <= high or node.keywords:
        counted = f"{low} to {high} positional arguments" if low < high else "one argument, n"
        lw.fail(f"`np.{gate}` takes {counted} here", node,
                hint="np.eye(n) is square; write others with np.zeros and writes" if gate == "eye"
                else "dtype= and other options are not supported; convert after, e.g. x * 1.0")
    args = [lw.expr(a, None) for a in node.args]
    if gate == "arange":
        args = {1: lambda a: [Const(0)] + a + [Const(1)], 2: lambda a: a + [Const(1)],
                3: lambda a: a}[len(args)](args)
    if gate == "linspace" and len(args) == 2:
        args.append(Const(50))
    return lw.emit(gate, args, {}, node, target)


def matrix_call(lw, node, gate, target):
    """np.linalg.inv(A), np.linalg.det(A), np.linalg.cholesky(A), np.trace(A), np.prod(x) of
    one array, and
    np.linalg.solve(A, b), np.cross(a, b) of two, with no options."""
    count = 2 if gate in ("solve", "cross") else 1
    if len(node.args) != count or node.keywords:
        hint = {"prod": "np.prod multiplies all entries; for one axis, loop over it",
                "cross": "np.cross takes vectors of 3 along the last axis, with no `axis`",
                "trace": "np.trace sums the main diagonal; for another, use np.diag(A, k)"}.get(gate)
        lw.fail(f"`{ast.unparse(node.func)}` takes {count} array{'s' if count > 1 else ''} and no "
                "options here", node, hint=hint)
    return lw.emit(gate, [lw.expr(a, None) for a in node.args], {}, node, target)


def interp_call(lw, node, gate, target):
    """np.interp(x, xp, fp), with no options."""
    if len(node.args) != 3 or node.keywords:
        lw.fail("`np.interp` takes x, xp and fp here (no left, right or period)", node,
                hint="for other values outside the knots, pad xp and fp with end points")
    return lw.emit(gate, [lw.expr(a, None) for a in node.args], {}, node, target)


def one_array(lw, node, gate, target):
    """np.argmax(x), np.argmin(x), np.median(x) (of the flattened array), np.sort(x) (of a
    vector) and the builtin round(x), with no options."""
    if len(node.args) != 1 or node.keywords:
        hint = {"round": "round(x, n) is not supported; np.round(x * 10 ** n) / 10 ** n is",
                "sort": "sort a vector, with no options",
                "median": "np.median of all entries; for the medians of rows, loop over them"
                }.get(gate, "loop over the other axis")
        lw.fail(f"`{ast.unparse(node.func)}` takes one argument here", node, hint=hint)
    return lw.emit(gate, [lw.expr(node.args[0], None)], {}, node, target)


def slogdet(lw, node, gate, target):
    """np.linalg.slogdet(A), the pair (sign, log|det A|): `sign, logdet = np.linalg.slogdet(A)`."""
    if len(node.args) != 1 or node.keywords:
        lw.fail("`np.linalg.slogdet` takes one matrix here", node)
    a = lw.expr(node.args[0], None)
    return lw.emit("det_sign", [a], {}, node), lw.emit("logdet", [a], {}, node)


def diagonal_call(lw, node, gate, target):
    """np.diag(x, k), np.tril(A, k), np.triu(A, k): k a constant (0 by default)."""
    options = {k.arg: k.value for k in node.keywords}
    if len(node.args) == 2:
        options["k"] = node.args[1]
    if not 1 <= len(node.args) <= 2 or set(options) - {"k"}:
        lw.fail(f"`{ast.unparse(node.func)}` takes an array and a constant `k` here", node)
    k = constant_option(lw, options.get("k"), 0, "k", (int,))
    return lw.emit(gate, [lw.expr(node.args[0], None)], {"k": k}, node, target)


def roll(lw, node, gate, target):
    """np.roll(x, shift): entries shifted along the flattened array; with a constant `axis`
    (of a vector or a matrix), along that axis."""
    options = {k.arg: k.value for k in node.keywords}
    if len(node.args) == 3:
        options["axis"] = node.args[2]
    if not 2 <= len(node.args) <= 3 or set(options) - {"axis"}:
        lw.fail("`np.roll` takes an array, a shift and `axis=` here", node)
    axis = constant_option(lw, options.get("axis"), None, "axis", (int, type(None)))
    return lw.emit("roll", [lw.expr(a, None) for a in node.args[:2]], {"axis": axis}, node, target)


def builtin_sum(lw, node, gate, target):
    """Builtin sum(x) of an array: the sum over its first axis, as np.sum(x, axis=0)."""
    if len(node.args) != 1 or node.keywords:
        lw.fail("`sum` takes one array here", node, hint="np.sum(x) sums all entries")
    return lw.emit("sum", [lw.expr(node.args[0], None)], {"axis": 0, "keepdims": False}, node, target)


def to_float(lw, node, target):
    """float(x), and float("inf"), float("-inf"), float("nan") as constants."""
    if len(node.args) == 1 and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        try:
            return Const(float(node.args[0].value))
        except ValueError:
            lw.fail(f"float({node.args[0].value!r}) is not a number", node)
    return cast("float")(lw, node, target)


def length(lw, node, target):
    if len(node.args) != 1:
        lw.fail("`len` takes one argument", node)
    return lw.emit("dim", [lw.expr(node.args[0], None)], {"axis": 0}, node, target)


def inline(lw, callee, node, target):
    """Differentiate through a call to the user's own function by inlining its body."""
    from .frontend import Lowerer
    from .source import check_signature, mutable_names, parse
    if callee in lw.stack:
        lw.fail(f"recursive call to `{callee.__name__}` is not supported", node,
                hint="rewrite the recursion as a loop")
    tree, where = parse(callee)
    check_signature(tree, where)
    params = [a.arg for a in tree.args.args]
    operands = bound_operands(lw, node, callee, params)
    sub = Lowerer(callee, where, lw.names, dict(zip(params, operands)), lw.stack + (callee,),
                  prefix=callee.__name__)
    sub.mutable = mutable_names(tree.body)
    sub.prelude, sub.constant_arrays = lw.prelude, lw.constant_arrays    # made once, up front
    body, result = sub.lower_function_body(tree)
    lw.block.extend(s for s in body if type(s).__name__ != "Return")
    lw.mutable_all |= sub.mutable_all
    if target is not None and not isinstance(result, tuple) and result != target:
        return lw.emit("copy", [result], {}, node, target)
    return result


def bound_operands(lw, node, callee, params):
    """The operands of a call to the user's `callee`, in the order of its `params`: positional
    arguments, then keyword arguments by name, then defaults."""
    operands = [lw.expr(a, None) for a in node.args]
    usage = f"it is `{callee.__name__}({', '.join(params)})`"
    if len(operands) > len(params):
        lw.fail(f"`{callee.__name__}` takes {len(params)} arguments, {len(operands)} given", node,
                hint=usage)
    named = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            lw.fail("`**` unpacking in a call is not supported", keyword.value,
                    hint="pass the arguments by name")
        if keyword.arg not in params:
            lw.fail(f"`{callee.__name__}` has no argument `{keyword.arg}`", keyword.value,
                    hint=usage)
        if keyword.arg in named or params.index(keyword.arg) < len(operands):
            lw.fail(f"`{keyword.arg}` is given twice", keyword.value,
                    hint=usage)
        named[keyword.arg] = lw.expr(keyword.value, None)
    defaults = callee.__defaults__ or ()
    defaults = dict(zip(params[len(params) - len(defaults):], defaults))
    for param in params[len(operands):]:
        if param in named:
            operands.append(named[param])
        elif param in defaults:
            operands.append(Const(defaults[param]))
        else:
            lw.fail(f"`{callee.__name__}` needs its argument `{param}`", node,
                    hint=usage)
    return operands


DISPATCH = [
    (ELEMENTWISE, elementwise), (BINARY, binary), (REDUCTIONS, reduction),
    (CREATION, creation), (LIKE, like), ({np.where: "where"}, where),
    ({np.transpose: "transpose"}, transpose_call), ({np.reshape: "reshape"}, reshape_call),
    (composites.FUNCTIONS, composites.variance), ({np.linalg.norm: "norm"}, composites.norm),
    ({np.clip: "clip"}, composites.clip), ({np.full: "full", np.full_like: "full_like"}, composites.full), ({np.logaddexp: "logaddexp"}, composites.logaddexp),
    ({np.diff: "diff"}, composites.diff), (composites.FLIPS, composites.flip),
    ({np.ravel: "ravel"}, ravel_call),
    ({np.reciprocal: "reciprocal"}, reciprocal),
    ({np.radians: "radians", np.deg2rad: "radians", math.radians: "radians", np.degrees: "degrees",
      np.rad2deg: "degrees", math.degrees: "degrees"}, composites.angle),
    ({np.trapezoid: "trapezoid"}, composites.trapezoid),
    ({np.array: "array", np.asarray: "array"}, array_of_numbers),
    ({np.concatenate: "concatenate", np.stack: "stack", np.hstack: "hstack", np.vstack: "vstack",
      np.column_stack: "column_stack"}, joined),
    ({np.arange: "arange", np.linspace: "linspace", np.eye: "eye"}, ranges), ({builtins.sum: "sum"}, builtin_sum),
    ({np.linalg.inv: "inv", np.linalg.det: "det", np.linalg.solve: "solve", np.trace: "trace",
      np.linalg.cholesky: "cholesky",
      np.prod: "prod", np.cross: "cross"}, matrix_call),
    ({np.diag: "diag", np.tril: "tril", np.triu: "triu"}, diagonal_call), ({np.roll: "roll"}, roll),
    ({np.linalg.slogdet: "slogdet"}, slogdet), ({np.interp: "interp"}, interp_call),
    ({np.argmax: "argmax", np.argmin: "argmin", np.sort: "sort", np.median: "median",
      builtins.round: "round"}, one_array),
]
SCIPY_SPECIAL = {"expit": ("sigmoid", elementwise), "erf": ("erf", elementwise),
                 "erfc": ("erfc", elementwise), "gammaln": ("lgamma", elementwise),
                 "logsumexp": ("logsumexp", reduction)}
SCALAR_CASTS = {builtins.float: to_float, builtins.int: cast("int"), builtins.len: length,
                np.float64: cast("float"), np.float32: cast("float32")}
