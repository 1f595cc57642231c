"""How each gate is written as Python in the generated forward (one small function per gate).

Each writer takes `(op, ty, *args)`: the IR op, its types (`ty.args`, `ty.out`)
and the operands as `Sym`s, and returns the `Sym` of the forward expression.
Full reductions use NumPy; reductions over one axis call srcdiff's helpers,
since numba's np.max/np.sum lack `axis`/`keepdims`.
"""
import ast

from .helpers import VECTORISED
from .sym import Sym, builtin, helper, if_else, linalg, np_, number, number_node, product, tuple_


class OpTypes:
    __slots__ = ("args", "out")

    def __init__(self, args, out):
        self.args, self.out = args, out


def binop(symbol):
    return lambda op, ty, x, y: symbol(x, y)


def arithmetic(ast_op):
    """`x <op> y` exactly as written: no peephole may turn `b = x * 1.0` into an alias `b = x`."""
    return lambda op, ty, x, y: Sym(ast.BinOp(x.node, ast_op(), y.node))


def array_of(op, ty, *items):
    """np.array([a, b]) or np.array([[a, b], [c, d]]), each number cast to the array's dtype
    where it differs (numba does not mix them in a nested list); np.array([u, v]) of arrays
    of one shape is np.stack((u, v))."""
    dtype = ty.out.dtype
    if ty.args[0].ndim:          # of arrays: stacked (numba's np.array takes numbers only)
        items = [x if t.dtype == dtype else x.method("astype", Sym("np").attr(dtype))
                 for x, t in zip(items, ty.args)]
        return np_.stack(Sym(ast.Tuple([x.node for x in items], ast.Load())))
    items = [x if t.dtype == dtype else getattr(np_, dtype)(x) for x, t in zip(items, ty.args)]
    if len(op.params["shape"]) == 1:
        return np_.array(Sym(ast.List([x.node for x in items], ast.Load())))
    n, m = op.params["shape"]
    rows = [ast.List([x.node for x in items[i * m:(i + 1) * m]], ast.Load()) for i in range(n)]
    return np_.array(Sym(ast.List(rows, ast.Load())))


def joined(op, ty, *items):
    """np.concatenate((a, b), axis=k) or np.stack((a, b), axis=k)."""
    arrays = Sym(ast.Tuple([x.node for x in items], ast.Load()))
    return getattr(np_, op.gate)(arrays, axis=Sym(number_node(op.params["axis"])))


def np_call(name):
    return lambda op, ty, *args: getattr(np_, name)(*args)


def printed(op, ty, *values):
    """print("text", x, ...): the string constants where they were, between the values."""
    values = iter(values)
    return builtin("print", *[Sym(ast.Constant(p)) if p is not None else next(values)
                              for p in op.params["parts"]])


def roll(op, ty, x, shift):
    """np.roll(x, shift), or along an axis with srcdiff's helper (numba's has no `axis`)."""
    axis = op.params.get("axis")
    if axis is None:
        return np_.roll(x, shift)
    return helper("roll_along", x, shift, Sym(ast.Constant(axis)))


def diagonal(name):
    """np.diag(x, k), np.tril(x, k), np.triu(x, k), with k left out where it is 0."""
    def write(op, ty, x):
        k = op.params["k"]
        return getattr(np_, name)(x, k) if k else getattr(np_, name)(x)
    return write


def scalar_or_np(builtin_name, np_name):
    def write(op, ty, x, y):
        if ty.out.ndim == 0:
            return builtin(builtin_name, x, y)
        return getattr(np_, np_name)(x, y)
    return write


def logical(py_op, np_name):
    def write(op, ty, *args):
        if ty.out.ndim == 0:
            return Sym(ast.BoolOp(py_op(), [a.node for a in args]))
        return getattr(np_, np_name)(*args)
    return write


def logical_not(op, ty, x):
    return Sym(ast.UnaryOp(ast.Not(), x.node)) if ty.out.ndim == 0 else np_.logical_not(x)


def where(op, ty, c, a, b):
    return if_else(c, a, b) if ty.out.ndim == 0 else np_.where(c, a, b)


def reduction(name):
    def write(op, ty, x):
        axis, keep = op.params["axis"], op.params["keepdims"]
        if ty.args[0].ndim == 0:
            return x
        if axis is None or ty.args[0].ndim == 1 and not keep:
            return helper(f"{name}_all", x) if name in ("max", "min") else getattr(np_, name)(x)
        return helper(f"{name}_over_keep" if keep else f"{name}_over", x, axis)
    return write


def logsumexp(op, ty, x):
    axis, keep = op.params["axis"], op.params["keepdims"]
    if axis is None:
        return helper("logsumexp_all", x)
    kept = helper("logsumexp_over_keep", x, axis)
    return kept if keep else helper("sum_over", kept, axis)


def softmax_like(name):
    def write(op, ty, x):
        axis = op.params["axis"]
        return helper(f"{name}_all", x) if axis is None else helper(f"{name}_over", x, axis)
    return write


def softmax_cross_entropy(op, ty, z, y):
    return -np_.sum(y * helper("log_softmax_over", z, -1))


def shape_of(op, args):
    layout = op.params["shape"]
    if layout[0] == "of":
        return args[0].attr("shape")
    return args[0] if layout[1] == 1 else tuple_(args)


def create(name):
    def write(op, ty, *args):
        shape = shape_of(op, args)
        if op.params["dtype"] == "float64":
            return getattr(np_, name)(shape)
        return getattr(np_, name)(shape, Sym(ast.Attribute(Sym("np").node, op.params["dtype"],
                                                           ast.Load())))
    return write


def reshape(op, ty, x, *shape):
    return np_.ascontiguousarray(x).method("reshape", shape_of(op, shape))


SMALL_PRODUCT_HELPERS = {(1, 2): "vecmat", (2, 1): "matvec"}


def matmul(op, ty, x, y):
    """`x @ y`, casting the float32 side when numba would see two dtypes."""
    if ty.args[0].dtype != ty.args[1].dtype:
        x, y = (x, helper("as_dtype_of", y, x)) if ty.args[0].dtype == ty.out.dtype else (
            helper("as_dtype_of", x, y), y)
    ranks = (ty.args[0].ndim, ty.args[1].ndim)
    if ranks in SMALL_PRODUCT_HELPERS and ty.out.is_float:   # loops when small, BLAS when large
        return helper(SMALL_PRODUCT_HELPERS[ranks], x, y)
    return x @ y


def power(op, ty, x):
    """`x ** n` for a whole n, written as the user's product `x * x * ... * x`."""
    return product(x, op.params["n"])


def relu(op, ty, x):
    return builtin("max", x, 0.0) if ty.out.ndim == 0 else np_.maximum(x, 0.0)


def sigmoid(op, ty, x):
    return 1.0 / (1.0 + np_.exp(-x))


def index_expr(layout, args):
    """The subscript expression for an index `layout` with operand Syms `args`."""
    it = iter(args)
    parts = []
    for kind in layout:
        if kind[0] == "at":
            parts.append(index_position(next(it)))
        elif kind[0] == "new":
            parts.append(ast.Constant(None))
        else:
            bounds = [next(it).node if present else None for present in kind[1:]]
            parts.append(ast.Slice(*bounds))
    return Sym(parts[0]) if len(parts) == 1 else Sym(ast.Tuple(parts, ast.Load()))


def index_position(operand):
    """A constant index stays one `ast.Constant` (`x[i, -1]`), as the loop optimisations expect."""
    value = number(operand)
    return operand.node if value is None else ast.Constant(value)


def index(op, ty, x, *positions):
    if sum(1 for t in ty.args[1:] if t.ndim) == 2:      # x[rows, cols]: entries in pairs
        return helper("pick_pairs", x, *positions)
    return x[index_expr(op.params["index"], positions)]


def dim(op, ty, x):
    return x.attr("shape")[op.params["axis"]]


FORWARD = {
    "add": arithmetic(ast.Add), "sub": arithmetic(ast.Sub), "mul": arithmetic(ast.Mult),
    "div": arithmetic(ast.Div), "pow": arithmetic(ast.Pow), "matmul": matmul,
    "mod": arithmetic(ast.Mod), "floordiv": arithmetic(ast.FloorDiv),
    "lt": binop(lambda x, y: x < y), "le": binop(lambda x, y: x <= y),
    "gt": binop(lambda x, y: x > y), "ge": binop(lambda x, y: x >= y),
    "eq": binop(lambda x, y: x.eq(y)),
    "ne": binop(lambda x, y: Sym(ast.Compare(x.node, [ast.NotEq()], [y.node]))),
    "and": logical(ast.And, "logical_and"), "or": logical(ast.Or, "logical_or"), "not": logical_not,
    "neg": lambda op, ty, x: -x, "copy": lambda op, ty, x: x,
    "assigned": lambda op, ty, x, is_set: helper("assigned", x, is_set,
                                                 Sym(ast.Constant(op.params["name"]))),
    "array": array_of, "concatenate": joined, "stack": joined,
    "hstack": lambda op, ty, *items: np_.hstack(tuple_(items)),
    "vstack": lambda op, ty, *items: np_.vstack(tuple_(items)),
    "column_stack": lambda op, ty, *items: np_.column_stack(tuple_(items)),
    "inv": lambda op, ty, a: linalg("inv", a),
    "cholesky": lambda op, ty, a: linalg("cholesky", a),
    "interp": np_call("interp"), "det": lambda op, ty, a: linalg("det", a),
    "solve": lambda op, ty, a, b: linalg("solve", a, b), "trace": np_call("trace"),
    "det_sign": lambda op, ty, a: linalg("slogdet", a)[0],
    "logdet": lambda op, ty, a: linalg("slogdet", a)[1],
    "printed": printed,
    "prod": np_call("prod"), "cross": np_call("cross"), "roll": roll,
    "argmax": np_call("argmax"), "argmin": np_call("argmin"), "sort": np_call("sort"),
    "median": np_call("median"),
    "dtype_of": lambda op, ty, x, like: helper("as_dtype_of", x, like),
    "diag": diagonal("diag"), "tril": diagonal("tril"), "triu": diagonal("triu"),
    "astype": lambda op, ty, x: x.method("astype", Sym("np").attr(op.params["dtype"])),
    "asserted": lambda op, ty, x: helper("asserted", x, Sym(ast.Constant(op.params["message"]))),
    "maximum": scalar_or_np("max", "maximum"), "minimum": scalar_or_np("min", "minimum"),
    "where": where, "outer": np_call("outer"), "arctan2": np_call("arctan2"),
    "relu": relu, "sigmoid": sigmoid, "square": lambda op, ty, x: x * x, "power": power,
    "sum": reduction("sum"), "mean": reduction("mean"), "max": reduction("max"),
    "min": reduction("min"), "logsumexp": logsumexp,
    "softmax": softmax_like("softmax"), "log_softmax": softmax_like("log_softmax"),
    "softmax_cross_entropy": softmax_cross_entropy,
    "zeros": create("zeros"), "ones": create("ones"), "empty": create("empty"),
    "zeros_like": np_call("zeros_like"), "ones_like": np_call("ones_like"),
    "empty_like": np_call("empty_like"), "copy_array": lambda op, ty, x: x.method("copy"),
    "transpose": lambda op, ty, x: x.T if ty.out.ndim else x, "reshape": reshape,
    "dim": dim, "broadcast_dim": lambda op, ty, m, n: helper("broadcast_dim", m, n),
    "size": lambda op, ty, x: x.attr("size"), "ndim": lambda op, ty, x: x.attr("ndim"),
    "int": lambda op, ty, x: builtin("int", x), "float": lambda op, ty, x: builtin("float", x),
    "float32": lambda op, ty, x: np_.float32(x),
    "index": index, "cumsum": np_call("cumsum"), "cumprod": np_call("cumprod"),
    "arange": np_call("arange"),
    "linspace": np_call("linspace"), "eye": np_call("eye"),
}
for _name in ("sqrt", "sin", "cos", "tan", "abs", "log1p", "expm1", "sign",
              "arctan", "sinh", "cosh", "floor", "ceil", "arcsin", "arccos", "arcsinh", "arccosh",
              "arctanh", "log10", "log2", "exp2", "cbrt", "hypot", "round", "isfinite", "isnan", "isinf"):
    FORWARD[_name] = np_call(_name)
for _name in VECTORISED:
    FORWARD[_name] = lambda op, ty, x, name=_name: \
        helper(name, x) if ty.out.is_array else getattr(np_, name)(x)
for _name in ("erf", "erfc", "lgamma"):       # math's, entry by entry: NumPy has none
    FORWARD[_name] = lambda op, ty, x, name=_name: helper(name, x)
