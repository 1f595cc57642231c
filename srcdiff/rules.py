"""The gate table: one adjoint rule per gate, each reading like the math.

A rule takes `(op, ty, g, z, *args)`: `g` is the upstream adjoint of the output
`z`, `args` the inputs (all `Sym`), `ty` their types. It returns one adjoint
contribution per input (None where the input gets nothing). Broadcasting is
undone centrally in `reverse.fit`, not here.

Conventions at non-differentiable points (documented in the README):
`abs'(0) = 0`; `relu'(0) = 0`; `maximum`/`minimum` split a tie 1/2 : 1/2;
`max`/`min` reductions share the gradient equally among tied entries.
"""
import ast
import math

from .sym import Sym, helper, if_else, lift, np_, number, product

RULES = {}
LOG_2, LOG_10, TWO_OVER_ROOT_PI = math.log(2.0), math.log(10.0), 2.0 / math.sqrt(math.pi)
NON_DIFFERENTIABLE = {
    "lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not", "sign", "floor", "ceil", "floordiv",
    "round", "isfinite", "isnan", "isinf", "asserted", "det_sign", "printed", "argmax", "argmin",
    "is_none", "is_not_none",
    "zeros", "ones", "empty", "zeros_like", "ones_like", "empty_like", "eye",
    "dim", "broadcast_dim", "size", "ndim", "int",
}
# gates whose partials can be infinite (at a domain edge: sqrt'(0), 1/x at 0) or overflow (exp):
# an adjoint that may still be zero skips their rule, as 0 * inf would make a NaN
UNBOUNDED = {
    "div", "mod", "pow", "log", "log1p", "log10", "log2", "sqrt", "cbrt", "arcsin", "arccos",
    "arccosh", "arctanh", "arctan2", "hypot", "exp", "expm1", "exp2", "sinh", "cosh", "tan",
    "lgamma",
}
# gates whose rule is applied by the reverse sweep itself (they write into arrays)
SWEEP_GATES = {"index", "store", "store_add", "store_sub"}


def rule(*gates):
    def register(fn):
        for gate in gates:
            RULES[gate] = fn
        return fn
    return register


def same(x, y):
    return ast.dump(x.node) == ast.dump(y.node)


def choose(ty, test, a, b):
    """`a if test else b`, elementwise for arrays."""
    return np_.where(test, a, b) if ty.out.ndim else if_else(test, a, b)


# ---- distributor, switcher, router (the seed's add / mul / max gates) --------
@rule("add")
def add(op, ty, g, z, x, y):
    return g, g


@rule("sub")
def sub(op, ty, g, z, x, y):
    return g, -g


@rule("mul")
def mul(op, ty, g, z, x, y):
    if same(x, y):                       # x * x
        return 2.0 * g * x, None
    return g * y, g * x


@rule("maximum")
def maximum(op, ty, g, z, x, y):
    return g * helper("wins", x, y), g * helper("wins", y, x)


@rule("minimum")
def minimum(op, ty, g, z, x, y):
    return g * helper("wins", y, x), g * helper("wins", x, y)


@rule("relu")
def relu(op, ty, g, z, x):
    return (choose(ty, x > 0.0, g, 0.0),)


# ---- arithmetic ----------------------------------------------------------------
@rule("div")
def div(op, ty, g, z, x, y):
    c = number(x)
    if c == 0:                           # z = 0 / y does not depend on y
        return None, None
    if c is not None:                    # z = c / y: dz/dy = -c / y**2 = -z * z / c, no division
        return None, -g * z * z / x
    return g / y, -g * z / y             # g first: z / y alone may overflow where g * z / y does not


@rule("mod")
def mod(op, ty, g, z, x, y):
    return g, -g * np_.floor(x / y)          # z = x - floor(x / y) * y


@rule("pow")
def pow_(op, ty, g, z, x, y):
    c = number(y)
    if c == 0:                           # z = x ** 0 = 1
        return None, None
    if c == 1:
        return g, None
    if c == 2:                           # z = x ** 2
        return 2.0 * g * x, None
    if c is not None:                    # z = x ** c: dz/dx = c * x ** (c - 1)
        return g * (y * x ** (c - 1.0)), None
    # the slopes are 0 where the exponent is 0 and where the base is 0, as in JAX and PyTorch
    return g * helper("base_slope", x, y), g * helper("exponent_slope", z, x)


@rule("neg")
def neg(op, ty, g, z, x):
    return (-g,)


@rule("copy", "copy_array", "float", "float32")
def identity(op, ty, g, z, x):
    return (g,)


@rule("assigned")
def assigned(op, ty, g, z, x, is_set, *name):
    return g, None


@rule("cumprod")
def cumprod(op, ty, g, z, x):
    return (helper("cumprod_adjoint", g, x),)     # z[k] = x[0] x[1] ... x[k]


@rule("cumsum")
def cumsum(op, ty, g, z, x):
    return (helper("reversed_cumsum", g, x),)     # z[k] = x[0] + ... + x[k]


@rule("arange")
def arange(op, ty, g, z, start, stop, step):
    k = np_.arange(z.attr("size"))                 # z[k] = start + k * step
    return np_.sum(g), None, np_.sum(g * k)


@rule("linspace")
def linspace(op, ty, g, z, a, b, n):
    t = np_.linspace(0.0, 1.0, n)                  # z = a + (b - a) * t
    return np_.sum(g * (1.0 - t)), np_.sum(g * t), None


@rule("where")
def where(op, ty, g, z, c, a, b):
    return None, choose(ty, c, g, 0.0), choose(ty, c, 0.0, g)


@rule("arctan2")
def arctan2(op, ty, g, z, y, x):
    r2 = x * x + y * y
    return g * (x / r2), -g * (y / r2)


# ---- elementwise f(x): dx = g * f'(x), reusing the output where it is cheaper ----
# A local derivative of several factors is built from forward values alone, then multiplied
# by g once: g arrives last (at the end of the chain of adjoints), so in a loop the CPU
# computes f'(x) while it waits. Only where f'(x) cannot overflow unless the forward does
# (x ** (n - 1) is finite where x ** n is); division keeps g first, as g * z / y can be
# finite where z / y is not. (2 * g * x stays: 2 * g is shared by the squares of one g.)
@rule("exp")
def exp(op, ty, g, z, x):
    return (g * z,)


@rule("expm1")
def expm1(op, ty, g, z, x):
    return (g * (z + 1.0),)


@rule("log")
def log(op, ty, g, z, x):
    return (g / x,)


@rule("log1p")
def log1p(op, ty, g, z, x):
    return (g / (1.0 + x),)


@rule("sqrt")
def sqrt(op, ty, g, z, x):
    return (g / (2.0 * z),)


@rule("square")
def square(op, ty, g, z, x):
    return (2.0 * g * x,)


@rule("power")
def power(op, ty, g, z, x):
    n = op.params["n"]
    return (g * (float(n) * product(x, n - 1)),)


@rule("sin")
def sin(op, ty, g, z, x):
    return (g * np_.cos(x),)


@rule("cos")
def cos(op, ty, g, z, x):
    return (-g * np_.sin(x),)


@rule("tan")
def tan(op, ty, g, z, x):
    return (g * (1.0 + z * z),)


@rule("tanh")
def tanh(op, ty, g, z, x):
    return (g * (1.0 - z * z),)


@rule("sinh")
def sinh(op, ty, g, z, x):
    return (g * np_.cosh(x),)


@rule("cosh")
def cosh(op, ty, g, z, x):
    return (g * np_.sinh(x),)


@rule("arctan")
def arctan(op, ty, g, z, x):
    return (g / (1.0 + x * x),)


@rule("array")
def array_of(op, ty, g, z, *items):
    """z = np.array([a, b, ...]) (or of rows): each number gets its entry of g."""
    shape = op.params["shape"]
    if len(shape) == 1:
        return tuple(g[k] for k in range(shape[0]))
    return tuple(g[Sym(ast.Tuple([ast.Constant(i), ast.Constant(j)], ast.Load()))]
                 for i in range(shape[0]) for j in range(shape[1]))


@rule("dtype_of")
def dtype_of(op, ty, g, z, x, like):
    """z = x in like's dtype: x gets g back in its own dtype; like gives only its dtype."""
    return helper("as_dtype_of", g, x), None


@rule("astype")
def astype(op, ty, g, z, x):
    return (helper("as_dtype_of", g, x),)


@rule("concatenate")
def concatenate(op, ty, g, z, *items):
    """z = np.concatenate((a, b, ...), axis): each array gets its stretch of g along the axis."""
    return stretches(g, items, op.params["axis"] % ty.out.ndim)


@rule("stack")
def stack(op, ty, g, z, *items):
    """z = np.stack((a, b, ...), axis): the k-th array gets g's k-th entry along the axis."""
    return entries(g, len(items), op.params["axis"] % ty.out.ndim)


@rule("hstack", "vstack", "column_stack")
def stacked(op, ty, g, z, *items):
    """np.hstack joins along axis 1 (axis 0 for vectors); np.vstack along axis 0, vectors as
    rows; np.column_stack along axis 1, vectors as columns."""
    vectors = ty.args[0].ndim == 1
    if op.gate == "hstack":
        return stretches(g, items, 0 if vectors else 1)
    axis = 0 if op.gate == "vstack" else 1
    return entries(g, len(items), axis) if vectors else stretches(g, items, axis)


def stretches(g, items, axis):
    grads, start = [], 0
    for x in items:
        stop = start + x.attr("shape")[axis]
        grads.append(g[along(axis, ast.Slice(lift(start).node, stop.node))])
        start = stop
    return tuple(grads)


def entries(g, count, axis):
    return tuple(g[along(axis, ast.Constant(k))] for k in range(count))


def along(axis, index):
    """The subscript that applies `index` to axis `axis` and takes every other axis whole."""
    if axis == 0:
        return Sym(index)
    return Sym(ast.Tuple([ast.Slice()] * axis + [index], ast.Load()))


@rule("arcsin")
def arcsin(op, ty, g, z, x):
    return (g / np_.sqrt(1.0 - x * x),)


@rule("arccos")
def arccos(op, ty, g, z, x):
    return (-g / np_.sqrt(1.0 - x * x),)


@rule("arcsinh")
def arcsinh(op, ty, g, z, x):
    return (g / np_.sqrt(x * x + 1.0),)


@rule("arccosh")
def arccosh(op, ty, g, z, x):
    return (g / np_.sqrt(x * x - 1.0),)


@rule("arctanh")
def arctanh(op, ty, g, z, x):
    return (g / (1.0 - x * x),)


@rule("log10")
def log10(op, ty, g, z, x):
    return (g / (x * LOG_10),)


@rule("log2")
def log2(op, ty, g, z, x):
    return (g / (x * LOG_2),)


@rule("exp2")
def exp2(op, ty, g, z, x):
    return (g * (z * LOG_2),)


@rule("cbrt")
def cbrt(op, ty, g, z, x):
    return (g / (3.0 * (z * z)),)


@rule("erf")
def erf(op, ty, g, z, x):
    return (g * (TWO_OVER_ROOT_PI * np_.exp(-(x * x))),)


@rule("erfc")
def erfc(op, ty, g, z, x):
    return (-g * (TWO_OVER_ROOT_PI * np_.exp(-(x * x))),)


@rule("lgamma")
def lgamma(op, ty, g, z, x):
    return (g * helper("digamma", x),)


@rule("hypot")
def hypot(op, ty, g, z, x, y):
    return g * (x / z), g * (y / z)


@rule("abs")
def abs_(op, ty, g, z, x):
    return (g * np_.sign(x),)


@rule("sigmoid")
def sigmoid(op, ty, g, z, x):
    return (g * (z * (1.0 - z)),)


# ---- linear algebra ------------------------------------------------------------
@rule("matmul")
def matmul(op, ty, g, z, x, y):
    ranks = (ty.args[0].ndim, ty.args[1].ndim)
    if ranks == (1, 1):
        return g * y, g * x
    if {t.dtype for t in ty.args} | {ty.out.dtype} != {"float64"}:
        # numba's `@` needs one dtype: the operands take the adjoint's (float64 where the
        # product is), so a float64 argument's gradient keeps its precision
        x, y = helper("as_dtype_of", x, g), helper("as_dtype_of", y, g)
    if ranks == (2, 2):
        return g @ y.T, x.T @ g
    if ranks == (1, 2):
        return helper("matvec", y, g), np_.outer(x, g)
    return np_.outer(g, y), helper("vecmat", g, x)


@rule("outer")
def outer(op, ty, g, z, x, y):
    return g @ y, x @ g


@rule("transpose")
def transpose(op, ty, g, z, x):
    return (g.T if ty.out.ndim else g,)     # a scalar's .T is the scalar, as in NumPy


@rule("reshape")
def reshape(op, ty, g, z, x, *shape):
    return (np_.ascontiguousarray(g).method("reshape", x.attr("shape")),) + (None,) * len(shape)


# ---- reductions: broadcast g back over the reduced axis ----------------------------
def spread(op, ty, g, x):
    if ty.args[0].ndim == 0:
        return g
    axis = op.params["axis"]
    return helper("spread_all", g, x) if axis is None else helper("spread", g, x, axis)


@rule("sum")
def sum_(op, ty, g, z, x):
    return (spread(op, ty, g, x),)


@rule("mean")
def mean(op, ty, g, z, x):
    axis = op.params["axis"]
    count = x.attr("size") if axis is None else x.attr("shape")[axis]
    return (spread(op, ty, g, x) / count,)


@rule("max", "min")
def max_(op, ty, g, z, x):
    if ty.args[0].ndim == 0:
        return (g,)
    axis = op.params["axis"]
    if axis is None:
        return (helper("tie_share_all", g, x, z),)
    return (spread(op, ty, g, x) * helper("tie_mask", x, z, axis),)


@rule("logsumexp")
def logsumexp(op, ty, g, z, x):
    axis = op.params["axis"]
    probs = helper("softmax_all", x) if axis is None else helper("softmax_over", x, axis)
    return (spread(op, ty, g, x) * probs,)


# ---- softmax family: the fused rules -------------------------------------------
def sum_like(op, v):
    axis = op.params["axis"]
    return np_.sum(v) if axis is None else helper("sum_over_keep", v, axis)


@rule("softmax")
def softmax(op, ty, g, z, x):
    return (z * (g - sum_like(op, g * z)),)


@rule("log_softmax")
def log_softmax(op, ty, g, z, x):
    return (g - np_.exp(z) * sum_like(op, g),)


@rule("softmax_cross_entropy")
def softmax_cross_entropy(op, ty, g, z, logits, y):
    p = helper("softmax_over", logits, -1)
    return g * (p * helper("sum_over_keep", y, -1) - y), -g * helper("log_softmax_over", logits, -1)


BROADCASTING = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "where", "arctan2", "mod",
                "hypot", "cross"}

from . import interpolation, matrices  # noqa: E402,F401  (their rules register themselves here)
