"""Type inference: the dtype and rank of every IR value, for one call signature.

Sizes stay symbolic: only `(dtype, ndim)` is inferred. Loops are iterated to a
fixed point; a value whose rank changes between iterations is an error (numba
would reject it too).
"""
from dataclasses import dataclass

import numpy as np

from .errors import SrcdiffError
from .graph import Const, For, If, Op, Return, While


@dataclass(frozen=True)
class Ty:
    dtype: str     # 'float64', 'float32', 'int64', 'bool'
    ndim: int      # 0 for scalars

    @property
    def is_float(self):
        return self.dtype.startswith("float")

    @property
    def is_array(self):
        return self.ndim > 0

    def __repr__(self):
        return self.dtype if self.ndim == 0 else f"{self.dtype}[{self.ndim}d]"


FLOAT, INT, BOOL = Ty("float64", 0), Ty("int64", 0), Ty("bool", 0)
NONE = Ty("none", 0)        # an argument passed as None


def type_of_value(value):
    """The Ty of a runtime argument, or None if srcdiff cannot take it."""
    if value is None:
        return NONE         # an argument left at its default None (see nones.py)
    if isinstance(value, (bool, np.bool_)):
        return BOOL
    if isinstance(value, (int, np.integer)):
        return INT if -2 ** 63 <= value < 2 ** 63 else None
    if isinstance(value, (float, np.float64, np.float32)):
        return Ty("float32" if isinstance(value, np.float32) else "float64", 0)
    if isinstance(value, np.ndarray) and (not value.dtype.isnative or isinstance(value, np.matrix)):
        return None
    if isinstance(value, np.ndarray) and value.ndim > 0:
        kind = value.dtype.kind
        if kind == "f" and value.dtype.name in ("float32", "float64"):
            return Ty(value.dtype.name, value.ndim)
        if kind in "iu":
            return Ty("int64", value.ndim)
        if kind == "b":
            return Ty("bool", value.ndim)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return type_of_value(value[()])
    return None


def promote(*dtypes):
    """Result dtype of mixing dtypes, as numba does it (float64 wins over float32)."""
    for d in ("float64", "float32", "int64"):
        if d in dtypes:
            return d
    return "bool"


def const_type(value):
    return BOOL if isinstance(value, bool) else INT if isinstance(value, int) else FLOAT


def infer(graph, arg_types):
    """Map every IR name to its Ty, given the Ty of each argument."""
    env = dict(zip(graph.params, arg_types))
    for _ in range(4):
        before = dict(env)
        _block(graph.body, env)
        if env == before:
            return env
    return env


def _block(block, env):
    for stmt in block:
        if isinstance(stmt, Op):
            _op(stmt, env)
        elif isinstance(stmt, For):
            for bound in (stmt.start, stmt.stop, stmt.step):
                if _ty(bound, env).dtype != "int64" or _ty(bound, env).ndim:
                    raise SrcdiffError("`range` bounds must be integers", stmt.where,
                                       hint="use int(...) or an integer expression such as x.shape[0]")
            env[stmt.index] = INT
            if stmt.counter:
                env[stmt.counter] = INT
            for _ in range(3):
                _block(stmt.body, env)
        elif isinstance(stmt, While):
            for _ in range(3):
                _block(stmt.test_block, env)
                _block(stmt.body, env)
            env[stmt.counter] = INT
        elif isinstance(stmt, If):
            if _ty(stmt.test, env).ndim:
                raise SrcdiffError("the condition of `if` is an array", stmt.where,
                                   hint="use np.where(cond, a, b) for elementwise choices")
            _block(stmt.body, env)
            _block(stmt.orelse, env)
        elif isinstance(stmt, Return):
            pass


def _ty(operand, env):
    if isinstance(operand, Const):
        return const_type(operand.value)
    return env[operand]


def _op(op, env):
    args = [_ty(a, env) for a in op.args]
    if NONE in args:        # nones.py folds and refuses every read of a None before this
        raise SrcdiffError("internal: a None argument reached typing", op.where)
    rule = TYPE_RULES.get(op.gate)
    if rule is None:
        raise SrcdiffError(f"internal: no type rule for gate {op.gate}", op.where)
    if op.params.get("only_1d") and args[0].ndim != 1:
        raise SrcdiffError(f"{op.params['only_1d']} is supported for 1-D arrays; this one is "
                           f"{args[0].ndim}-D", op.where,
                           hint=op.params.get("hint_1d"))
    out = rule(op, *args)
    if op.out is None:
        if op.params.get("swap") and args[1].ndim:
            raise SrcdiffError("a tuple assignment of array slices: in NumPy the slices on the "
                               "right are views, so the second target gets the first's new values, "
                               "not a swap", op.where,
                               hint="swap through a copy: `t = a[0].copy(); a[0] = a[1]; a[1] = t`")
        return
    old = env.get(op.out)
    if old is not None and old != out:
        if old.ndim != out.ndim and op.where.text.strip().startswith("return"):
            raise SrcdiffError(f"this `return` gives a {out}, and an earlier one a {old}: the "
                               "function returns one kind of value on every path", op.where,
                               hint="return a scalar on every path (reduce arrays, e.g. np.sum)")
        if old.ndim != out.ndim:
            hint = "give the new value its own name"
            if old.ndim == 0:
                hint = (f"if `{op.out}` accumulates arrays, start it as one, e.g. "
                        f"`{op.out} = np.zeros(...)` with the shape it gets here; else {hint}")
            raise SrcdiffError(f"`{op.out}` changes from a {old} to a {out} here", op.where, hint=hint)
        out = Ty(promote(old.dtype, out.dtype), out.ndim)
    env[op.out] = out


def float_of(dtype):
    return dtype if dtype.startswith("float") else "float64"


def scalar_float(op, x):
    if x.ndim:
        raise SrcdiffError(f"`math.{op.gate}` takes a number, and this value is a {x.ndim}-D array",
                           op.where, hint="apply it to each entry in a loop")
    return Ty(float_of(x.dtype), 0)


def condition(op, x):
    if x.ndim:
        raise SrcdiffError("the condition of `assert` is an array", op.where,
                           hint="assert a number, e.g. a comparison of shapes or of np.min(x)")
    return BOOL


def array_of(op, *items):
    """np.array of numbers (or rows of numbers), or of arrays of one rank, stacked."""
    ranks = {item.ndim for item in items}
    if ranks != {0} and (len(ranks) > 1 or len(op.params["shape"]) > 1):
        if op.params.get("tuple"):
            raise SrcdiffError("a tuple kept as a value is an array of its parts, and these mix "
                               f"{' and '.join(sorted({str(i) for i in items}))}", op.where,
                               hint="keep parts of different shapes in names of their own, or "
                                    "unpack the tuple where it is made: `h, c = step(h, c)`")
        raise SrcdiffError("np.array takes numbers, rows of numbers or arrays of one rank, and "
                           "these are mixed", op.where,
                           hint="stack arrays of one shape with np.stack((a, b))")
    dtype = op.params["dtype"] or promote(*(item.dtype for item in items))
    return Ty(dtype, len(op.params["shape"]) + ranks.pop())


def joined(op, *items):
    """np.concatenate (ranks kept) and np.stack (one more) of arrays of one rank."""
    ranks = {item.ndim for item in items}
    if 0 in ranks or len(ranks) > 1:
        raise SrcdiffError(f"np.{op.gate} takes arrays of one rank", op.where,
                           hint="for numbers use np.array([a, b, ...])" if 0 in ranks else None)
    ndim = ranks.pop() + (op.gate == "stack")
    if not -ndim <= op.params["axis"] < ndim:
        raise SrcdiffError(f"axis {op.params['axis']} is out of bounds for np.{op.gate} of "
                           f"{ndim}-D arrays", op.where)
    return Ty(promote(*(item.dtype for item in items)), ndim)


def stacked(op, *items):
    """np.hstack, np.vstack, np.column_stack of arrays of one rank (1 or 2)."""
    ranks = {item.ndim for item in items}
    if len(ranks) > 1 or not ranks <= {1, 2}:
        raise SrcdiffError(f"np.{op.gate} takes vectors, or matrices, all of one rank", op.where,
                           hint="for other ranks use np.concatenate or np.stack with an axis")
    ndim = ranks.pop()
    return Ty(promote(*(item.dtype for item in items)), 1 if op.gate == "hstack" and ndim == 1 else 2)


def astype(op, x):
    needs_array(op, x, "`.astype`")
    return Ty(op.params["dtype"], x.ndim)


def same(op, x, *rest):
    return x


def floating(op, x, *rest):
    return Ty(float_of(x.dtype), x.ndim)


def broadcast(op, *args):
    return Ty(promote(*(a.dtype for a in args)), max(a.ndim for a in args))


def power(op, x):
    return broadcast(op, x, x)


def divide(op, x, y):
    return Ty(float_of(promote(x.dtype, y.dtype)), max(x.ndim, y.ndim))


def compare(op, *args):
    if op.gate == "not" and op.params.get("bitwise") and not args[0].ndim:
        raise SrcdiffError("`~` of a single boolean is not its negation in Python (~True is -2)",
                           op.where, hint="write `not x` for one boolean; `~` negates masks")
    if op.params.get("bitwise") and any(a.dtype != "bool" for a in args):
        raise SrcdiffError("`&`, `|` and `~` are supported on booleans (masks) only, and here an "
                           f"operand is {' and '.join(str(a) for a in args)}", op.where,
                           hint="bitwise operations on integers are not supported")
    return Ty("bool", max(a.ndim for a in args))


def choose(op, c, a, b):
    return Ty(promote(a.dtype, b.dtype), max(c.ndim, a.ndim, b.ndim))


def matmul(op, x, y):
    if not x.ndim or not y.ndim:
        raise SrcdiffError(f"`@` / np.dot of a number ({x} and {y}): srcdiff takes arrays here",
                           op.where, hint="multiply by a number with `*`: np.dot(2.0, x) is 2.0 * x")
    if not (1 <= x.ndim <= 2 and 1 <= y.ndim <= 2):
        raise SrcdiffError(f"`@` needs 1-D or 2-D arrays, got {x} and {y}", op.where,
                           hint="batched matmul of 3-D arrays is not supported; loop over the batch")
    return Ty(promote(x.dtype, y.dtype), x.ndim + y.ndim - 2)


def outer(op, x, y):
    if x.ndim != 1 or y.ndim != 1:
        raise SrcdiffError(f"np.outer of {x} and {y}: srcdiff takes 1-D arrays (NumPy would "
                           "flatten the others)", op.where,
                           hint="flatten them yourself, e.g. np.outer(x.ravel(), y.ravel())")
    return Ty(promote(x.dtype, y.dtype), 2)


def reduce(op, x):
    axis, keep = op.params["axis"], op.params["keepdims"]
    if axis is not None and not -x.ndim <= axis < max(x.ndim, 1):
        raise SrcdiffError(f"axis {axis} is out of range for a {x.ndim}-D array", op.where)
    if axis is None and keep and x.ndim:
        raise SrcdiffError("`keepdims=True` without `axis` is not supported", op.where,
                           hint="reduce over one axis at a time, or drop keepdims")
    dtype = float_of(x.dtype) if op.gate in ("mean", "logsumexp") else x.dtype
    if keep:
        return Ty(dtype, x.ndim)
    return Ty(dtype, 0 if axis is None else x.ndim - 1)


def softmax(op, x):
    if x.ndim == 0:
        raise SrcdiffError("softmax needs an array", op.where)
    return Ty(float_of(x.dtype), x.ndim)


def scalar_of(op, z, y):
    return Ty(float_of(z.dtype), 0)


def shape_rank(op, *args):
    layout = op.params["shape"]
    return layout[1] if layout[0] == "tuple" else args[-1].ndim


def create(op, *args):
    sizes_only(op, args)
    return Ty(op.params["dtype"], shape_rank(op, *args))


def sizes_only(op, dims):
    """A shape written as a tuple in the call holds integers, not a tuple kept in a name."""
    if op.params["shape"][0] == "tuple" and any(d.ndim or d.dtype != "int64" for d in dims):
        raise SrcdiffError("a shape here is an integer, a tuple of integers written in the call, "
                           "or x.shape", op.where,
                           hint="write the sizes in the call: np.zeros((n, m)), not a tuple kept "
                                "in a name")


def reshape(op, x, *dims):
    needs_array(op, x, "`.reshape`")
    sizes_only(op, dims)
    return Ty(x.dtype, shape_rank(op, *dims) if op.params["shape"][0] == "tuple" else dims[0].ndim)


def integer(op, *args):
    return INT


def dim(op, x):
    rank = op.params.get("rank")
    if rank is not None and rank != x.ndim:
        raise SrcdiffError(f"unpacking {rank} sizes from the shape of a {x.ndim}-D array", op.where)
    if not -x.ndim <= op.params["axis"] < x.ndim:
        raise SrcdiffError(f"shape index {op.params['axis']} is out of range for a {x.ndim}-D array",
                           op.where)
    return INT


def to_float(op, x):
    if x.ndim:
        raise SrcdiffError("float() of an array", op.where,
                           hint="cast arrays with x.astype(...) outside the function")
    return FLOAT


def to_float32(op, x):
    to_float(op, x)
    return Ty("float32", 0)


def index(op, x, *positions):
    layout = op.params["index"]
    picked = sum(1 for p in layout if p[0] != "new")
    if picked > x.ndim:
        raise SrcdiffError(f"too many indices for a {x.ndim}-D value", op.where)
    if any(t.ndim for t in positions):
        from .picks import picked_type
        return picked_type(op, x, positions)
    for t in positions:
        if t.dtype != "int64" or t.ndim:
            raise SrcdiffError("array indices and slice bounds must be integer scalars", op.where,
                               hint="convert with int(...); arrays (masks, index lists) cannot index: "
                                    "use np.where(mask, x, 0.0), or a loop")
    dropped = sum(1 for p in layout if p[0] == "at")
    added = sum(1 for p in layout if p[0] == "new")
    return Ty(x.dtype, x.ndim - dropped + added)


def store(op, x, value, *positions):
    if x.ndim == 0:
        raise SrcdiffError("cannot index into a scalar", op.where)
    if any(t.ndim for t in positions):
        from .picks import picked_type
        picked_type(op, x, positions, writing=True)
    return None


def transpose(op, x):
    return x


def needs_array(op, x, what):
    if not x.ndim:
        raise SrcdiffError(f"{what} needs an array, and this value is a scalar", op.where,
                           hint="index with a slice to keep an array: x[0:1] instead of x[0]")


def ranged(op, *bounds):
    """np.arange (int64 from integer bounds), np.linspace (float64), np.eye (2-D float64)."""
    for b in bounds:
        if b.ndim:
            raise SrcdiffError(f"np.{op.gate} takes scalars here, and one of these is an array",
                               op.where)
    if op.gate == "eye":
        return Ty("float64", 2)
    integers = all(b.dtype in ("int64", "bool") for b in bounds)
    return Ty("int64" if op.gate == "arange" and integers else "float64", 1)


def cumulative(op, x):
    needs_array(op, x, f"np.{op.gate}")
    return Ty(x.dtype if x.dtype.startswith("float") else "int64", 1)


TYPE_RULES = {
    "copy": same, "assigned": same, "neg": same, "abs": same, "square": same, "copy_array": same,
    "zeros_like": same, "ones_like": same, "empty_like": same, "transpose": transpose,
    "exp": floating, "log": floating, "sqrt": floating, "sin": floating, "cos": floating,
    "tan": floating, "tanh": floating, "log1p": floating, "expm1": floating, "sign": floating,
    "arctan": floating, "sinh": floating, "cosh": floating, "floor": floating, "ceil": floating,
    "relu": floating, "sigmoid": floating, "arcsin": floating, "arccos": floating,
    "arcsinh": floating, "arccosh": floating, "arctanh": floating, "log10": floating,
    "log2": floating, "exp2": floating, "cbrt": floating, "erf": floating, "erfc": floating,
    "lgamma": floating,
    "hypot": divide, "round": floating, "isfinite": compare, "isnan": compare, "isinf": compare,
    "asserted": condition, "array": array_of, "concatenate": joined, "stack": joined,
    "hstack": stacked, "vstack": stacked, "column_stack": stacked,
    "astype": astype,
    "add": broadcast, "sub": broadcast, "mul": broadcast, "pow": broadcast, "maximum": broadcast,
    "minimum": broadcast, "power": power, "mod": broadcast, "floordiv": broadcast, "div": divide, "arctan2": divide,
    "lt": compare, "le": compare, "gt": compare, "ge": compare, "eq": compare, "ne": compare,
    "and": compare, "or": compare, "not": compare, "where": choose,
    "matmul": matmul, "outer": outer,
    "sum": reduce, "mean": reduce, "max": reduce, "min": reduce, "logsumexp": reduce,
    "softmax": softmax, "log_softmax": softmax, "softmax_cross_entropy": scalar_of,
    "zeros": create, "ones": create, "empty": create, "reshape": reshape,
    "dim": dim, "broadcast_dim": integer, "size": integer, "ndim": integer, "int": integer, "float": to_float, "float32": to_float32,
    "index": index, "store": store, "store_add": store, "store_sub": store, "cumsum": cumulative,
    "cumprod": cumulative,
    "printed": lambda op, *args: None, "is_none": lambda op, x: BOOL,
    "is_not_none": lambda op, x: BOOL, "dtype_of": lambda op, x, like: Ty(like.dtype, x.ndim),
    "arange": ranged, "linspace": ranged, "eye": ranged,
}
