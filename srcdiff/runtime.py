"""Runtime helpers called by generated gradient code.

Every public helper works both from plain Python on NumPy arrays and from
inside ``numba.njit`` code (including ``cache=True``).  Helpers whose body
numba compiles as is use ``register_jitable``; the others are plain NumPy
functions with a separate numba implementation registered via ``overload``.

The numba implementations of axis helpers view the input as a flat C-ordered
buffer split around ``axis`` into ``(outer, n, inner)`` (so no transposes are
needed and the remaining axes keep their order) and loop explicitly.
"""

import math

import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.cpython.unsafe.tuple import tuple_setitem
from numba.np.numpy_support import as_dtype

from .cached import overload, register_jitable, register_jitable_in_memory
from .helpers import RUNTIME_NAMES
from .vectorised import exp, log, tanh  # noqa: F401 (generated code imports them from here)

__all__ = list(RUNTIME_NAMES)


# ---------------------------------------------------------------------------
# Plain NumPy implementations (also the Python-mode entry points)
# ---------------------------------------------------------------------------

def unbroadcast(g, like):
    """Sum g over the axes along which like's shape was broadcast to g's."""
    if g.shape == like.shape:
        return g
    lead = g.ndim - like.ndim
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(like.shape)
        if n == 1 and g.shape[lead + i] != 1)
    return np.sum(g, axis=axes).reshape(like.shape)


def unbroadcast_to(g, shape):
    """Sum g over the axes along which `shape` was broadcast to g's shape."""
    return unbroadcast(g, np.empty(shape, dtype=bool))


def sum_over(x, axis):
    """np.sum(x, axis)."""
    return np.sum(x, axis=axis)


def sum_over_keep(x, axis):
    """np.sum(x, axis, keepdims=True)."""
    return np.sum(x, axis=axis, keepdims=True)


def mean_over(x, axis):
    """np.mean(x, axis)."""
    return np.mean(x, axis=axis)


def mean_over_keep(x, axis):
    """np.mean(x, axis, keepdims=True)."""
    return np.mean(x, axis=axis, keepdims=True)


def max_all(x):
    """np.max(x): the largest entry (NaN if x holds one)."""
    return np.max(x)


def min_all(x):
    """np.min(x): the smallest entry (NaN if x holds one)."""
    return np.min(x)


def max_over(x, axis):
    """np.max(x, axis)."""
    return np.max(x, axis=axis)


def max_over_keep(x, axis):
    """np.max(x, axis, keepdims=True)."""
    return np.max(x, axis=axis, keepdims=True)


def min_over(x, axis):
    """np.min(x, axis)."""
    return np.min(x, axis=axis)


def min_over_keep(x, axis):
    """np.min(x, axis, keepdims=True)."""
    return np.min(x, axis=axis, keepdims=True)


def _keep_axis(r, x, axis):
    """r (a reduction of x over axis) with the reduced axis present."""
    r = np.asarray(r)
    return r if r.ndim == x.ndim else np.expand_dims(r, axis)


def spread(g, x, axis):
    """A new array shaped like x holding g broadcast back along axis."""
    g = _keep_axis(g, x, axis)
    return np.broadcast_to(g, x.shape).copy()


def spread_all(g, x):
    """A new array shaped like x filled with the scalar g."""
    return np.full(x.shape, g)


def tie_mask(x, m, axis):
    """1/count where x equals its reduced value m along axis, else 0."""
    eq = x == _keep_axis(m, x, axis)
    count = np.maximum(np.sum(eq, axis=axis, keepdims=True), 1)  # 0, not NaN, if no match
    return (eq / count).astype(x.dtype)


def tie_mask_all(x, m):
    """1/count where x equals the scalar m, else 0."""
    eq = x == m
    return (eq / max(np.sum(eq), 1)).astype(x.dtype)


def tie_share_all(g, x, m):
    """g shared equally among the entries of x equal to the scalar m (g * 0 elsewhere)."""
    eq = x == m
    share = 1.0 / max(int(np.sum(eq)), 1)
    return np.where(eq, g * share, g * 0.0)


def add_tie_share_all(d, g, x, m):
    """d += tie_share_all(g, x, m), in place."""
    d += tie_share_all(g, x, m)


def tie_share_at(g, tape, at):
    """tie_share_all(g, x, m) from the record `push_extremes` stored at tape[at:]: a vector
    of x.size holding g shared equally among the positions where x was m, g * 0 elsewhere."""
    count = int(tape[at + 1])
    out = np.full(int(tape[at]), g * 0.0)
    out[tape[at + 2:at + 2 + count].astype(np.int64)] = g * (1.0 / max(count, 1))
    return out


def add_tie_share_at(d, g, tape, at):
    """d += tie_share_at(g, tape, at), in place."""
    d += tie_share_at(g, tape, at)


def reversed_cumsum(g, x):
    """The adjoint of np.cumsum(x) for its adjoint g: entry k gets g[k] + g[k+1] + ...,
    shaped like x (np.cumsum flattens)."""
    return np.cumsum(g[::-1])[::-1].reshape(x.shape)


def add_at(d, index, g):
    """d[index] += g, in place, for an index array: each repeat of an index adds again (as
    np.add.at); a boolean vector picks the entries (or rows) where it is true."""
    if index.dtype == np.bool_:
        d[index] += g
    else:
        np.add.at(d, index, g)


def pick_pairs(x, rows, cols):
    """x[rows, cols]: entry k is x[rows[k], cols[k]] (numba takes one index array at a time)."""
    return x[rows, cols]


def add_at_pairs(d, rows, cols, g):
    """d[rows, cols] += g, in place, adding again for each repeat of a pair (as np.add.at)."""
    np.add.at(d, (rows, cols), g)


def add_outer(d, x, y):
    """d += np.outer(x, y), in place."""
    d += np.outer(x, y)


def vecmat(x, a):
    """x @ a for a vector x and a matrix a."""
    return x @ a


def matvec(a, x):
    """a @ x for a matrix a and a vector x."""
    return a @ x


def vecmat_into(out, x, a):
    """x @ a, written into `out` when it has the result's shape (a buffer a loop reuses)."""
    return x @ a


def matvec_into(out, a, x):
    """a @ x, written into `out` when it has the result's shape (a buffer a loop reuses)."""
    return a @ x


def vecmat_fill(out, x, a):
    """out[:] = x @ a, for a buffer `out` of the product's length."""
    out[:] = x @ a


def matvec_fill(out, a, x):
    """out[:] = a @ x, for a buffer `out` of the product's length."""
    out[:] = a @ x


def _shift_over(z, axis):
    """Max of z along axis (kept), with non-finite maxima replaced by 0."""
    m = np.max(z, axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0).astype(z.dtype)


def softmax_over(z, axis):
    """Stable softmax of z along axis."""
    e = np.exp(z - _shift_over(z, axis))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax_over(z, axis):
    """Stable log-softmax of z along axis."""
    d = z - _shift_over(z, axis)
    return d - np.log(np.sum(np.exp(d), axis=axis, keepdims=True))


def logsumexp_over_keep(z, axis):
    """Stable log(sum(exp(z), axis, keepdims=True))."""
    m = _shift_over(z, axis)
    return m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def softmax_all(z):
    """Stable softmax of z over all its entries."""
    return softmax_over(z.reshape(-1), 0).reshape(z.shape)


def log_softmax_all(z):
    """Stable log-softmax of z over all its entries."""
    return log_softmax_over(z.reshape(-1), 0).reshape(z.shape)


def logsumexp_all(z):
    """Stable log(sum(exp(z))) as a scalar."""
    return logsumexp_over_keep(z.reshape(-1), 0)[0]


def as_dtype_of(g, like):
    """g converted to like's dtype (g itself if it already has it)."""
    if isinstance(g, np.ndarray):
        return g if g.dtype == like.dtype else g.astype(like.dtype)
    return like.dtype.type(g)


def apart(g, other):
    """g, or a copy of it if it shares memory with `other` (gradients returned together must
    not: the adjoint of `x + y` reaches x and y as one array)."""
    return g.copy() if np.may_share_memory(g, other) else g


@overload(apart)
def _apart_ol(g, other):
    return lambda g, other: g.copy() if _may_overlap(g, other) else g


@register_jitable
def _may_overlap(a, b):
    """Whether the memory spans of arrays a and b intersect."""
    if a.size == 0 or b.size == 0:
        return False
    a_lo, a_hi = _span(a)
    b_lo, b_hi = _span(b)
    return a_lo < b_hi and b_lo < a_hi


@register_jitable
def _span(a):
    lo = a.ctypes.data
    hi = lo + a.itemsize
    for axis in range(a.ndim):
        reach = a.strides[axis] * (a.shape[axis] - 1)
        if reach < 0:
            lo += reach
        else:
            hi += reach
    return lo, hi


@register_jitable
def reserve(tape, n):
    """tape if it holds at least n entries, else a larger copy of it."""
    size = tape.shape[0]
    if size >= n:
        return tape
    grown = np.empty(max(n, 2 * size, 64), np.float64)   # entries are read only once written
    for i in range(size):  # a loop: slice assignment costs numba seconds to compile
        grown[i] = tape[i]
    return grown


def keeps_shape(x, shape, name):
    """Raise unless array `x` has the shape `shape` of the array bound to `name` before, or
    that was empty (the placeholder of a name first set in the loop)."""
    if x.shape != shape and _size_of(shape):
        raise ValueError(f"`{name}` changes shape in a loop ({shape} to "
                         f"{x.shape}): the gradient of such a loop is not supported yet")


@register_jitable
def _size_of(shape):
    size = 1
    for n in shape:
        size *= n
    return size


@overload(keeps_shape)
def _keeps_shape_ol(x, shape, name):
    def impl(x, shape, name):
        if x.shape != shape and _size_of(shape):
            # a constant message: srcdiff reruns the call in Python, which names the array
            raise ValueError("an array changes shape in a loop: the gradient "
                             "of such a loop is not supported yet")
    return impl


@register_jitable
def product_of_others(x):
    """For each entry of x, the product of all the others: the slope of np.prod(x). Running
    products from both ends, so a zero entry gives no 0 / 0."""
    flat = np.ascontiguousarray(x).ravel()
    out = np.empty(flat.size, flat.dtype)
    before = flat.dtype.type(1.0)
    for i in range(flat.size):
        out[i] = before
        before *= flat[i]
    after = flat.dtype.type(1.0)
    for i in range(flat.size - 1, -1, -1):
        out[i] *= after
        after *= flat[i]
    return out.reshape(x.shape)


@register_jitable
def cumprod_adjoint(g, x):
    """The adjoint of np.cumprod(x) (flattened) for its adjoint g, shaped like x: entry i gets
    x[0] ... x[i-1] R[i], with R[i] = g[i] + x[i+1] R[i+1] (no division: exact at zeros)."""
    flat = np.ascontiguousarray(x).ravel()
    out = np.empty(flat.size, g.dtype)
    carried = 0.0                     # x[i+1] R[i+1]
    for i in range(flat.size - 1, -1, -1):
        out[i] = g[i] + carried
        carried = flat[i] * out[i]
    before = 1.0
    for i in range(flat.size):
        out[i] *= before
        before *= flat[i]
    return out.reshape(x.shape)


@register_jitable
def _interp_segment(v, xp):
    """(j, t) of the number v on the knots xp: xp[j] <= v <= xp[j + 1] at t = (v - xp[j]) /
    (xp[j + 1] - xp[j]) (the segment starting at v if v is a knot, the last one at the last
    knot), or j = -1 below the knots and j = len(xp) - 1 above them (t = 0)."""
    last = xp.size - 1
    if v < xp[0] or last == 0:
        return (-1 if v < xp[0] or v != v else last), 0.0
    if v > xp[last]:
        return last, 0.0
    j = min(np.searchsorted(xp, v, side="right") - 1, last - 1)
    return j, (v - xp[j]) / (xp[j + 1] - xp[j])


@register_jitable
def _interp_adjoints(g, x, xp, fp, part):
    """For flat x and g: the slope at each x (part 0), or the adjoint of xp (1) or of fp (2)."""
    out = np.zeros(x.size if part == 0 else xp.size)
    for i in range(x.size):
        j, t = _interp_segment(x[i], xp)
        if j < 0 or j == xp.size - 1:
            if part == 2:
                out[max(j, 0)] += g[i]
            continue
        slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
        if part == 0:
            out[i] = slope
        elif part == 1:
            out[j] -= g[i] * slope * (1.0 - t)
            out[j + 1] -= g[i] * slope * t
        else:
            out[j] += g[i] * (1.0 - t)
            out[j + 1] += g[i] * t
    return out


def _interp_flat(g, x, xp, fp, part):
    """_interp_adjoints for g and x of any shape (numbers too)."""
    flat_x = np.asarray(x, dtype=np.float64).ravel()
    flat_g = np.broadcast_to(np.asarray(g, dtype=np.float64), np.shape(x)).ravel()
    out = _interp_adjoints(flat_g, flat_x, np.asarray(xp, dtype=np.float64), fp, part)
    if part:
        return out
    return out.reshape(np.shape(x)) if np.ndim(x) else float(out[0])


def interp_slope(x, xp, fp):
    """The slope of np.interp(x, xp, fp) in x, shaped like x."""
    return _interp_flat(1.0, x, xp, fp, 0)


def interp_knots_adjoint(g, x, xp, fp):
    """The adjoint of xp in np.interp(x, xp, fp), for the adjoint g of its value."""
    return _interp_flat(g, x, xp, fp, 1)


def interp_values_adjoint(g, x, xp, fp):
    """The adjoint of fp in np.interp(x, xp, fp), for the adjoint g of its value."""
    return _interp_flat(g, x, xp, fp, 2)


@register_jitable
def _interp_of_array(g, x, xp, fp, part):
    """_interp_adjoints for an array x (and g a number or an array of x's shape)."""
    flat_g = np.ascontiguousarray(np.broadcast_to(g, x.shape)).ravel().astype(np.float64)
    flat_x = np.ascontiguousarray(x).ravel().astype(np.float64)
    return _interp_adjoints(flat_g, flat_x, xp.astype(np.float64), fp, part)


@register_jitable
def _interp_of_number(g, x, xp, fp, part):
    return _interp_adjoints(np.array([float(g)]), np.array([float(x)]), xp.astype(np.float64),
                            fp, part)


@overload(interp_slope)
def _interp_slope_ol(x, xp, fp):
    if isinstance(x, types.Array):
        return lambda x, xp, fp: _interp_of_array(1.0, x, xp, fp, 0).reshape(x.shape)
    return lambda x, xp, fp: _interp_of_number(1.0, x, xp, fp, 0)[0]


def _interp_adjoint_ol(part):
    def typer(g, x, xp, fp):
        if isinstance(x, types.Array):
            return lambda g, x, xp, fp: _interp_of_array(g, x, xp, fp, part)
        return lambda g, x, xp, fp: _interp_of_number(g, x, xp, fp, part)
    return typer


overload(interp_knots_adjoint)(_interp_adjoint_ol(1))
overload(interp_values_adjoint)(_interp_adjoint_ol(2))


@register_jitable
def median_adjoint(g, x):
    """The adjoint of np.median(x) (of all entries): g to x's middle entry in sorted order, or
    g / 2 to each of the two middle ones (of equal entries, the first in x's order). The middle
    values come from a partition, as the median's own, not from a sort."""
    flat = np.ascontiguousarray(x).ravel()
    out = np.zeros(flat.size, flat.dtype)
    half = flat.size // 2
    parted = np.partition(flat, half)
    upper = parted[half]
    if flat.size % 2:
        _add_at_first(out, flat, upper, g, -1)
    else:
        lower = parted[0]
        for k in range(1, half):
            lower = max(lower, parted[k])
        taken = _add_at_first(out, flat, lower, 0.5 * g, -1)
        _add_at_first(out, flat, upper, 0.5 * g, taken if upper == lower else -1)
    return out.reshape(x.shape)


@register_jitable
def _add_at_first(out, flat, value, g, skip):
    """out[i] += g at the first i (other than `skip`) where flat[i] == value; returns i (-1 if
    there is none: a NaN median)."""
    for i in range(flat.size):
        if flat[i] == value and i != skip:
            out[i] += g
            return i
    return -1


@register_jitable
def cofactors(a):
    """The cofactor matrix of a square matrix, adj(a)^T, the slope of det(a). From the SVD
    a = u diag(s) vt: adj(a)^T = det(u) det(vt) u diag(prod of the other s) vt, which holds
    where a is singular too (where det(a) a^-T cannot be formed)."""
    u, s, vt = np.linalg.svd(a)
    sign = np.linalg.det(u) * np.linalg.det(vt)
    return sign * ((u * product_of_others(s)) @ vt)


@register_jitable
def cholesky_adjoint(lower, g):
    """The adjoint of A for L = np.linalg.cholesky(A), which reads A's lower triangle: with
    S = L^-T Phi(L^T g) L^-1 (Phi: the lower triangle, its diagonal halved), S + S^T below
    the diagonal, S on it, zeros above."""
    phi = np.tril(lower.T @ g)
    for i in range(phi.shape[0]):
        phi[i, i] *= 0.5
    left = np.linalg.solve(lower.T, phi)                  # L^-T Phi
    s = np.linalg.solve(lower.T, left.T).T                # L^-T Phi L^-1
    out = np.tril(s + s.T)
    for i in range(s.shape[0]):
        out[i, i] = s[i, i]
    return out


def roll_along(x, shift, axis):
    """np.roll(x, shift, axis) of a vector or a matrix."""
    return np.roll(x, shift, axis=axis)


@overload(roll_along)
def _roll_along_ol(x, shift, axis):
    _require_array("roll_along", x=x)
    if x.ndim == 1:
        return lambda x, shift, axis: np.roll(x, shift)
    if x.ndim != 2:
        raise TypingError("roll_along: a vector or a matrix")

    def impl(x, shift, axis):
        n0, n1 = x.shape
        out = np.empty((n0, n1), x.dtype)
        if axis % 2 == 0:
            for i in range(n0):
                out[(i + shift) % n0, :] = x[i, :]
        else:
            for j in range(n1):
                out[:, (j + shift) % n1] = x[:, j]
        return out
    return impl


@register_jitable
def unsorted(g, x):
    """g, ordered as np.sort ordered x undone: the adjoint of np.sort(x) for a vector x."""
    out = np.empty_like(g)
    out[np.argsort(x)] = g
    return out


@register_jitable
def spread_diagonal(g, like, k):
    """An array of like's shape holding g on its k-th diagonal and zeros elsewhere: the
    adjoint of np.diag(like, k)."""
    out = np.zeros(like.shape, g.dtype)
    row, column = max(-k, 0), max(k, 0)
    for i in range(g.shape[0]):
        out[row + i, column + i] = g[i]
    return out


def erf(x):
    """The error function, of a number or entry by entry (math.erf, which NumPy lacks)."""
    return _entrywise(math.erf, x)


def erfc(x):
    """1 - erf(x), without its cancellation for large x."""
    return _entrywise(math.erfc, x)


def lgamma(x):
    """log|Gamma(x)| (math.lgamma, scipy.special.gammaln)."""
    return _entrywise(math.lgamma, x)


def digamma(x):
    """The slope of lgamma."""
    return _entrywise(_digamma_of, x)


def _entrywise(f, x):
    if isinstance(x, np.ndarray):
        return np.vectorize(f, otypes=[x.dtype])(x)
    return f(x)


@register_jitable
def _digamma_of(x):
    """digamma(x): up by the recurrence psi(x) = psi(x + 1) - 1/x to x >= 10, then the
    asymptotic series (error below 1e-14 there); reflected for negative x."""
    if x <= 0.0 and x == math.floor(x):
        return math.nan                      # a pole
    shift = 0.0
    if x < 0.0:                              # psi(x) = psi(1 - x) - pi / tan(pi x)
        shift = -math.pi / math.tan(math.pi * x)
        x = 1.0 - x
    while x < 10.0:
        shift -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))))
    return shift + math.log(x) - 0.5 / x - series


def _entrywise_ol(name, kernel):
    """numba overload of an entrywise helper: the kernel on a number, or on each entry."""
    def typer(x):
        if isinstance(x, types.Array):
            def on_array(x):
                values = np.ravel(x)
                out = np.empty(values.size, x.dtype)
                for i in range(values.size):
                    out[i] = kernel(values[i])
                return out.reshape(x.shape)
            return on_array
        return lambda x: kernel(x)
    typer.__name__ = f"_{name}_ol"
    return typer


for _fn, _kernel in ((erf, math.erf), (erfc, math.erfc), (lgamma, math.lgamma),
                     (digamma, _digamma_of)):
    overload(_fn)(_entrywise_ol(_fn.__name__, _kernel))


@register_jitable
def base_slope(x, y):
    """d(x ** y)/dx = y * x ** (y - 1), and 0 where y == 0: x ** 0 is 1 for every x (the
    exponent y - 1 would make 0 * inf at x == 0)."""
    return y * x ** (y - (y != 0))


@register_jitable
def exponent_slope(z, x):
    """d(x ** y)/dy = x ** y * log(x), for z = x ** y, and 0 where x == 0: 0 ** y is 0 for
    every y > 0 (log(0) would make 0 * -inf)."""
    return z * np.log(x + (x == 0))


@register_jitable
def broadcast_dim(m, n):
    """The length of an axis where lengths m and n broadcast together (both valid)."""
    return m if n == 1 else n


def assigned(value, is_set, name):
    """`value` of the variable `name`, read where it may not be set: UnboundLocalError, as
    in Python, if no assignment to it ran."""
    if not is_set:
        raise UnboundLocalError(f"cannot access local variable '{name}' where it is not "
                                "associated with a value")
    return value


@overload(assigned)
def _assigned_ol(value, is_set, name):
    def impl(value, is_set, name):
        # a constant message: a native (aot) module cannot raise a built one; the error
        # srcdiff reports is that of rerunning the code in Python, which names the variable
        if not is_set:
            raise UnboundLocalError("a local variable is read before any assignment to it ran")
        return value
    return impl


def asserted(ok, message):
    """`assert ok, message`, as Python runs it."""
    if not ok:
        raise AssertionError(message)
    return ok


@overload(asserted)
def _asserted_ol(ok, message):
    def impl(ok, message):
        # a constant message, as for `assigned`; the error srcdiff reports reruns the code in
        # Python, which gives the user's message
        if not ok:
            raise AssertionError("an assert of the function failed")
        return ok
    return impl


@register_jitable
def range_last(a, b, s):
    """Last value of range(a, b, s), or a - s when that range is empty."""
    if s > 0:
        n = (b - a + s - 1) // s
    else:
        n = (a - b - s - 1) // (-s)
    return a + (max(n, 0) - 1) * s


# ---------------------------------------------------------------------------
# numba building blocks
#
# The numba implementations view an array as a flat C-ordered buffer split
# around ``axis`` into dims = (outer, n, inner): entry (o, k, i) sits at
# (o * n + k) * inner + i.  Flat indexing is deliberate: multi-dimensional
# indexing in these loops makes numba emit several times more LLVM IR, which
# every caller re-optimises when linking, and that dominated compile time.
# Hot loops index 1-D row slices: LLVM then sees non-negative unit-stride
# indices and vectorises them, which it does not for x[base + i].
# ---------------------------------------------------------------------------

@register_jitable
def _norm_axis(axis, nd):
    """axis as a non-negative int, checked against nd."""
    if axis < -nd or axis >= nd:
        raise ValueError("axis out of range")
    return axis + nd if axis < 0 else axis


@register_jitable
def _dims(shape, axis):
    """(outer, n, inner) sizes of shape split around axis."""
    ax = _norm_axis(axis, len(shape))
    outer = 1
    inner = 1
    for i in range(len(shape)):
        if i < ax:
            outer *= shape[i]
        elif i > ax:
            inner *= shape[i]
    return (outer, shape[ax], inner)


def _flat(x):
    """x as a flat C-ordered array (a copy unless x is C-contiguous)."""
    return np.ascontiguousarray(x).reshape(-1)


@overload(_flat)
def _flat_ol(x):
    if x.layout == "C":
        return lambda x: x.reshape(x.size)

    def impl(x):
        # Iterating x.flat compiles to far less code than np.ascontiguousarray,
        # and this copy gets linked into every helper.
        out = np.empty(x.size, x.dtype)
        for i, v in enumerate(x.flat):
            out[i] = v
        return out
    return impl


@register_jitable
def _keep_shape(shape, axis):
    """shape with the entry at axis set to 1."""
    return tuple_setitem(shape, _norm_axis(axis, len(shape)), 1)


@register_jitable
def _drop_shape(shape, axis):
    """shape without the entry at axis (len(shape) >= 2)."""
    # numba cannot build a tuple of computed length, so start from the
    # statically sliced shape[:-1] and overwrite its entries.
    ax = _norm_axis(axis, len(shape))
    out = shape[:-1]
    for i in range(len(out)):
        out = tuple_setitem(out, i, shape[i + (i >= ax)])
    return out


@register_jitable(fastmath={"reassoc"})
def _sum_k(x, dims):
    """Sum of flat x over k, as a flat (outer, inner) array."""
    outer, n, inner = dims
    r = np.zeros(outer * inner, x.dtype)
    for o in range(outer):
        if inner == 1:  # one contiguous run: sum it in a register
            xo = x[o * n:(o + 1) * n]
            acc = r[o]
            for k in range(n):
                acc += xo[k]
            r[o] = acc
            continue
        ro = r[o * inner:(o + 1) * inner]
        for k in range(n):
            xk = x[(o * n + k) * inner:(o * n + k + 1) * inner]
            for i in range(inner):
                ro[i] += xk[i]
    return r


@register_jitable
def _mean_k(x, dims):
    """Mean of flat x over k, as a flat (outer, inner) array."""
    r = _sum_k(x, dims)
    for j in range(r.size):
        r[j] /= dims[1]
    return r


@register_jitable
def _max_k(x, dims):
    """Max of flat x over k (NaN-propagating), as a flat (outer, inner) array."""
    outer, n, inner = dims
    if n == 0:
        raise ValueError("zero-size max has no identity")
    r = np.empty(outer * inner, x.dtype)
    for o in range(outer):
        if inner == 1:  # one contiguous run: reduce it in a register
            xo = x[o * n:(o + 1) * n]
            acc = xo[0]
            for k in range(1, n):
                acc = np.maximum(acc, xo[k])
            r[o] = acc
            continue
        ro = r[o * inner:(o + 1) * inner]
        for k in range(n):
            xk = x[(o * n + k) * inner:(o * n + k + 1) * inner]
            for i in range(inner):
                ro[i] = xk[i] if k == 0 else np.maximum(ro[i], xk[i])
    return r


@register_jitable
def _min_k(x, dims):
    """Min of flat x over k (NaN-propagating), as a flat (outer, inner) array."""
    outer, n, inner = dims
    if n == 0:
        raise ValueError("zero-size min has no identity")
    r = np.empty(outer * inner, x.dtype)
    for o in range(outer):
        if inner == 1:  # one contiguous run: reduce it in a register
            xo = x[o * n:(o + 1) * n]
            acc = xo[0]
            for k in range(1, n):
                acc = np.minimum(acc, xo[k])
            r[o] = acc
            continue
        ro = r[o * inner:(o + 1) * inner]
        for k in range(n):
            xk = x[(o * n + k) * inner:(o * n + k + 1) * inner]
            for i in range(inner):
                ro[i] = xk[i] if k == 0 else np.minimum(ro[i], xk[i])
    return r


@register_jitable
def _spread_k(g, dims):
    """Flat (outer, n, inner) array repeating flat (outer, inner) g along k."""
    outer, n, inner = dims
    out = np.empty(outer * n * inner, g.dtype)
    for o in range(outer):
        if inner == 1:  # one contiguous run: fill it with one value
            oo = out[o * n:(o + 1) * n]
            for k in range(n):
                oo[k] = g[o]
            continue
        go = g[o * inner:(o + 1) * inner]
        for k in range(n):
            ok = out[(o * n + k) * inner:(o * n + k + 1) * inner]
            for i in range(inner):
                ok[i] = go[i]
    return out


@register_jitable
def _tie_k(x, m, dims):
    """1/count where flat x equals flat (outer, inner) m along k, else 0."""
    outer, n, inner = dims
    count = np.zeros(outer * inner, np.int64)
    for o in range(outer):
        for k in range(n):
            src = (o * n + k) * inner
            for i in range(inner):
                if x[src + i] == m[o * inner + i]:
                    count[o * inner + i] += 1
    out = np.zeros(x.size, x.dtype)
    for o in range(outer):
        for k in range(n):
            src = (o * n + k) * inner
            for i in range(inner):
                if x[src + i] == m[o * inner + i]:
                    out[src + i] = 1.0 / count[o * inner + i]
    return out


@register_jitable
def _expsum_k(z, dims):
    """(e, m, s): m the max of z over k (0 if not finite), e = exp(z - m), s = sum_k e."""
    outer, n, inner = dims
    m = _max_k(z, dims)
    for j in range(m.size):
        if not math.isfinite(m[j]):
            m[j] = 0.0
    e = np.empty_like(z)
    s = np.zeros_like(m)
    for o in range(outer):
        for k in range(n):
            src = (o * n + k) * inner
            for i in range(inner):
                e[src + i] = math.exp(z[src + i] - m[o * inner + i])
                s[o * inner + i] += e[src + i]
    return e, m, s


@register_jitable
def _softmax_k(z, dims):
    """Softmax of flat z over k."""
    e, m, s = _expsum_k(z, dims)
    outer, n, inner = dims
    for o in range(outer):
        for k in range(n):
            src = (o * n + k) * inner
            for i in range(inner):
                e[src + i] /= s[o * inner + i]
    return e


@register_jitable
def _log_softmax_k(z, dims):
    """Log-softmax of flat z over k."""
    e, m, s = _expsum_k(z, dims)
    outer, n, inner = dims
    for o in range(outer):
        for k in range(n):
            src = (o * n + k) * inner
            for i in range(inner):
                j = o * inner + i
                e[src + i] = (z[src + i] - m[j]) - math.log(s[j])
    return e


@register_jitable
def _logsumexp_k(z, dims):
    """Logsumexp of flat z over k, as a flat (outer, inner) array."""
    e, m, s = _expsum_k(z, dims)
    for j in range(m.size):
        m[j] += math.log(s[j])
    return m


@register_jitable
def _unbroadcast_nb(g, shape):
    """g summed down to shape (a shape g's shape was broadcast from)."""
    lead = g.ndim - len(shape)
    r = _flat(g)
    cur = g.shape
    for d in range(g.ndim):  # sum one broadcast axis at a time
        if d < lead or (shape[d - lead] == 1 and cur[d] != 1):
            r = _sum_k(r, _dims(cur, d))
            cur = tuple_setitem(cur, d, 1)
    return r.reshape(shape)


# ---------------------------------------------------------------------------
# numba overloads
# ---------------------------------------------------------------------------

def _require_array(name, **args):
    """Raise a TypingError unless every given numba type is an Array."""
    for arg, ty in args.items():
        if not isinstance(ty, types.Array):
            raise TypingError(f"{name}: {arg} must be an array, got {ty}")


@overload(unbroadcast)
def _unbroadcast_ol(g, like):
    _require_array("unbroadcast", g=g, like=like)
    if g.ndim < like.ndim:
        raise TypingError("unbroadcast: g has fewer dimensions than like")
    if g.ndim == like.ndim:
        def impl(g, like):
            if g.shape == like.shape:
                return g
            return _unbroadcast_nb(g, like.shape)
    else:
        def impl(g, like):
            return _unbroadcast_nb(g, like.shape)
    return impl


@overload(unbroadcast_to)
def _unbroadcast_to_ol(g, shape):
    _require_array("unbroadcast_to", g=g)
    if not isinstance(shape, types.UniTuple) or g.ndim < shape.count:
        raise TypingError("unbroadcast_to: shape must be a tuple of at most g.ndim ints")
    if g.ndim > shape.count:
        return lambda g, shape: _unbroadcast_nb(g, shape)

    def impl(g, shape):
        if g.shape == shape:
            return g
        return _unbroadcast_nb(g, shape)
    return impl


def _reduction_ol(name, kernel, keep):
    """numba overload of a reduction helper built on a flat kernel."""
    def typer(x, axis):
        _require_array(name, x=x)
        if keep:
            def impl(x, axis):
                r = kernel(_flat(x), _dims(x.shape, axis))
                return r.reshape(_keep_shape(x.shape, axis))
        elif x.ndim == 1:
            def impl(x, axis):
                return kernel(_flat(x), _dims(x.shape, axis))[0]
        else:
            def impl(x, axis):
                r = kernel(_flat(x), _dims(x.shape, axis))
                return r.reshape(_drop_shape(x.shape, axis))
        return impl
    return typer


for _fn, _kernel, _keep in [
        (sum_over, _sum_k, False), (sum_over_keep, _sum_k, True),
        (mean_over, _mean_k, False), (mean_over_keep, _mean_k, True),
        (max_over, _max_k, False), (max_over_keep, _max_k, True),
        (min_over, _min_k, False), (min_over_keep, _min_k, True)]:
    overload(_fn)(_reduction_ol(_fn.__name__, _kernel, _keep))


@overload(spread)
def _spread_ol(g, x, axis):
    _require_array("spread", x=x)
    if isinstance(g, types.Array):
        def impl(g, x, axis):
            return _spread_k(_flat(g), _dims(x.shape, axis)).reshape(x.shape)
    elif isinstance(g, types.Number):
        def impl(g, x, axis):
            return np.full(x.shape, g)
    else:
        raise TypingError(f"spread: g must be an array or scalar, got {g}")
    return impl


@overload(spread_all)
def _spread_all_ol(g, x):
    _require_array("spread_all", x=x)
    return lambda g, x: np.full(x.shape, g)


@overload(tie_mask)
def _tie_mask_ol(x, m, axis):
    _require_array("tie_mask", x=x)
    if isinstance(m, types.Array):
        def impl(x, m, axis):
            r = _tie_k(_flat(x), _flat(m), _dims(x.shape, axis))
            return r.reshape(x.shape)
    else:
        def impl(x, m, axis):
            return tie_mask_all(x, m)
    return impl


@overload(tie_mask_all)
def _tie_mask_all_ol(x, m):
    _require_array("tie_mask_all", x=x)

    def impl(x, m):
        m1 = np.empty(1, x.dtype)
        m1[0] = m
        return _tie_k(_flat(x), m1, (1, x.size, 1)).reshape(x.shape)
    return impl


@register_jitable
def _tie_share_k(d, g, x, m):
    """Flat d += g / count where flat x equals m (count of such entries), g * 0 elsewhere."""
    count = 0
    for i in range(x.size):            # branch-free: vectorised
        count += x[i] == m
    zero = g * 0.0
    if count == 1 and zero == 0.0:     # one maximum, a finite g: adding zeros changes nothing
        first = 0
        while x[first] != m:
            first += 1
        d[first] += g
        return
    share = g * (1.0 / max(count, 1))
    for i in range(x.size):
        d[i] += share if x[i] == m else zero


@overload(tie_share_all)
def _tie_share_all_ol(g, x, m):
    _require_array("tie_share_all", x=x)
    dtype = np.float32 if x.dtype == types.float32 and g == types.float32 else np.float64

    def impl(g, x, m):
        out = np.zeros(x.size, dtype)
        _tie_share_k(out, g, _flat(x), m)
        return out.reshape(x.shape)
    return impl


@overload(add_tie_share_all)
def _add_tie_share_all_ol(d, g, x, m):
    _require_array("add_tie_share_all", d=d, x=x)
    if d.ndim == 1 and x.ndim == 1:
        return lambda d, g, x, m: _tie_share_k(d, g, x, m)
    if d.layout == "C":
        return lambda d, g, x, m: _tie_share_k(d.reshape(d.size), g, _flat(x), m)

    def impl(d, g, x, m):
        share = tie_share_all(g, x, m)
        for index in np.ndindex(d.shape):
            d[index] += share[index]
    return impl


@register_jitable
def _tie_share_at_k(d, g, tape, at):
    """d += g shared among the positions stored at tape[at + 2:] (increasing), g * 0 elsewhere."""
    count = int(tape[at + 1])
    first = at + 2
    share = g if count == 1 else g * (1.0 / max(count, 1))
    zero = g * 0.0
    if zero == 0.0:                    # a finite g: adding zeros changes nothing
        for j in range(first, first + count):
            d[int(tape[j])] += share
        return
    j = first
    for i in range(d.size):
        if j < first + count and int(tape[j]) == i:
            d[i] += share
            j += 1
        else:
            d[i] += zero


@overload(tie_share_at)
def _tie_share_at_ol(g, tape, at):
    dtype = np.float32 if g == types.float32 else np.float64

    def impl(g, tape, at):
        out = np.zeros(int(tape[at]), dtype)
        _tie_share_at_k(out, g, tape, at)
        return out
    return impl


@register_jitable_in_memory
def _greater(a, b):
    return a > b


@register_jitable_in_memory
def _less(a, b):
    return a < b


@register_jitable_in_memory     # takes a function: not cached
def _extreme_1d(x, better):
    """The entry of 1-D x no other is `better` than (the first NaN if x holds one)."""
    m = x[0]
    unordered = False
    for k in range(x.size):      # selects, not branches: where the winner sits is random
        v = x[k]
        m = v if better(v, m) else m
        unordered |= v != v
    if unordered:
        for k in range(x.size):
            if x[k] != x[k]:
                return x[k]
    return m


@register_jitable
def _no_identity(name):
    raise ValueError("zero-size array to a reduction operation which has no identity")


def _extreme_all_ol(name, numpy_fn, better):
    """numba overload of max_all / min_all: a plain loop over a 1-D array (np.max pays a
    general iterator, which dominates on short rows), np.max / np.min otherwise."""
    def typer(x):
        _require_array(name, x=x)
        if x.ndim != 1 or not isinstance(x.dtype, (types.Float, types.Integer)):
            return lambda x: numpy_fn(x)

        def impl(x):
            if x.size == 0:
                _no_identity(name)
            return _extreme_1d(x, better)
        return impl
    return typer


overload(max_all, inline="always")(_extreme_all_ol("maximum", np.max, _greater))
overload(min_all, inline="always")(_extreme_all_ol("minimum", np.min, _less))


@overload(add_tie_share_at)
def _add_tie_share_at_ol(d, g, tape, at):
    _require_array("add_tie_share_at", d=d)
    if d.ndim != 1:
        raise TypingError("add_tie_share_at: d must be 1-D")
    return lambda d, g, tape, at: _tie_share_at_k(d, g, tape, at)


@overload(reversed_cumsum)
def _reversed_cumsum_ol(g, x):
    _require_array("reversed_cumsum", g=g, x=x)

    def impl(g, x):
        out = np.empty(g.size, g.dtype)
        total = 0.0
        for k in range(g.size - 1, -1, -1):
            total += g[k]
            out[k] = total
        return out.reshape(x.shape)
    return impl


@overload(add_at)
def _add_at_ol(d, index, g):
    _require_array("add_at", d=d, index=index, g=g)
    if isinstance(index.dtype, types.Boolean):
        def by_mask(d, index, g):
            k = 0
            for i in range(index.shape[0]):
                if index[i]:
                    d[i] += g[k]
                    k += 1
        return by_mask

    def by_position(d, index, g):
        for k in range(index.shape[0]):
            d[index[k]] += g[k]
    return by_position


@register_jitable
def _pairs(rows, cols):
    """How many pairs x[rows, cols] picks: the vectors' common length (one of length 1 is
    broadcast, as NumPy does), or IndexError."""
    if rows.shape[0] != cols.shape[0] and rows.shape[0] != 1 and cols.shape[0] != 1:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together")
    return rows.shape[0] if cols.shape[0] == 1 else cols.shape[0]


@register_jitable
def _pair_at(rows, cols, k, shape):
    """(rows[k], cols[k]) as NumPy reads them (a vector of length 1 broadcast, negative
    entries from the end), or IndexError."""
    i, j = rows[k if rows.shape[0] > 1 else 0], cols[k if cols.shape[0] > 1 else 0]
    i = i + shape[0] if i < 0 else i
    j = j + shape[1] if j < 0 else j
    if i < 0 or i >= shape[0] or j < 0 or j >= shape[1]:
        raise IndexError("index out of bounds in x[rows, cols]")
    return i, j


@overload(pick_pairs)
def _pick_pairs_ol(x, rows, cols):
    _require_array("pick_pairs", x=x, rows=rows, cols=cols)

    def impl(x, rows, cols):
        out = np.empty(_pairs(rows, cols), x.dtype)
        for k in range(out.shape[0]):
            out[k] = x[_pair_at(rows, cols, k, x.shape)]
        return out
    return impl


@overload(add_at_pairs)
def _add_at_pairs_ol(d, rows, cols, g):
    _require_array("add_at_pairs", d=d, rows=rows, cols=cols, g=g)

    def impl(d, rows, cols, g):
        for k in range(_pairs(rows, cols)):
            d[_pair_at(rows, cols, k, d.shape)] += g[k]
    return impl


@overload(add_outer, inline="always")
def _add_outer_ol(d, x, y):
    _require_array("add_outer", d=d, x=x, y=y)

    def impl(d, x, y):
        if d.shape != (x.size, y.size):
            raise ValueError("add_outer: shapes do not match")
        for i in range(x.size):
            xi = x[i]
            row = d[i]
            for j in range(y.size):
                row[j] += xi * y[j]
    return impl


# below this many entries, vecmat runs a loop: a BLAS call costs more than the work
VECMAT_LOOP_SIZE = 4096


@register_jitable
def _add_rows(x, a, out):
    """out += x @ a, a's rows scaled and summed: unit stride, vectorised; four rows a pass,
    so `out` is loaded and stored a quarter as often."""
    n, m = a.shape
    p = 0
    while p + 4 <= n:
        x0, x1, x2, x3 = x[p], x[p + 1], x[p + 2], x[p + 3]
        r0, r1, r2, r3 = a[p], a[p + 1], a[p + 2], a[p + 3]
        for j in range(m):
            out[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j]
        p += 4
    for q in range(p, n):
        xq = x[q]
        row = a[q]
        for j in range(m):
            out[j] += xq * row[j]


@overload(vecmat)
def _vecmat_ol(x, a):
    _require_array("vecmat", x=x, a=a)
    if x.ndim != 1 or a.ndim != 2:
        raise TypingError("vecmat: x must be 1-D and a 2-D")
    return lambda x, a: vecmat_into(np.empty(a.shape[1], a.dtype), x, a)


@overload(vecmat_into)
def _vecmat_into_ol(out, x, a):
    _require_array("vecmat_into", out=out, x=x, a=a)
    if x.ndim != 1 or a.ndim != 2 or out.ndim != 1:
        raise TypingError("vecmat_into: x and out must be 1-D and a 2-D")

    def impl(out, x, a):
        if out.shape[0] != a.shape[1]:
            out = np.empty(a.shape[1], out.dtype)
        vecmat_fill(out, x, a)
        return out
    return impl


@register_jitable(fastmath={"reassoc", "contract"})
def _row_dots(a, x, out):
    """out[i] = a[i] . x for a C-contiguous matrix a; reassociated (and fused
    multiply-adds), so LLVM vectorises the dot products, as BLAS does."""
    for i in range(a.shape[0]):
        row = a[i]
        acc = 0.0
        for j in range(x.shape[0]):
            acc += row[j] * x[j]
        out[i] = acc


@overload(matvec)
def _matvec_ol(a, x):
    _require_array("matvec", a=a, x=x)
    if a.ndim != 2 or x.ndim != 1:
        raise TypingError("matvec: a must be 2-D and x 1-D")
    return lambda a, x: matvec_into(np.empty(a.shape[0], a.dtype), a, x)


@overload(matvec_into)
def _matvec_into_ol(out, a, x):
    _require_array("matvec_into", out=out, a=a, x=x)
    if a.ndim != 2 or x.ndim != 1 or out.ndim != 1:
        raise TypingError("matvec_into: a must be 2-D, x and out 1-D")

    def impl(out, a, x):
        if out.shape[0] != a.shape[0]:
            out = np.empty(a.shape[0], out.dtype)
        matvec_fill(out, a, x)
        return out
    return impl


@overload(vecmat_fill)
def _vecmat_fill_ol(out, x, a):
    _require_array("vecmat_fill", out=out, x=x, a=a)
    if x.ndim != 1 or a.ndim != 2 or out.ndim != 1:
        raise TypingError("vecmat_fill: x and out must be 1-D and a 2-D")

    def impl(out, x, a):
        n, m = a.shape
        if n * m > VECMAT_LOOP_SIZE or x.shape[0] != n or out.shape[0] != m:
            _copied(x @ a, out)     # large: BLAS; shapes that do not match: numba's error
        else:
            out[:] = 0
            _add_rows(x, a, out)
    return impl


@register_jitable
def _copied(values, out):
    """out[:] = values for vectors, as a loop: the slice assignment compiles the formatting of
    its shape-mismatch message, over a second in every process that compiles a new gradient."""
    if values.shape[0] != out.shape[0]:
        raise ValueError("a product does not fit the buffer it is written into")
    for k in range(out.shape[0]):
        out[k] = values[k]


@overload(matvec_fill)
def _matvec_fill_ol(out, a, x):
    _require_array("matvec_fill", out=out, a=a, x=x)
    if a.ndim != 2 or x.ndim != 1 or out.ndim != 1:
        raise TypingError("matvec_fill: a must be 2-D, x and out 1-D")
    if a.layout != "C" or a.dtype != x.dtype or not isinstance(a.dtype, types.Float):
        def by_blas(out, a, x):
            _copied(a @ x, out)
        return by_blas

    def impl(out, a, x):
        n, m = a.shape
        if n * m > VECMAT_LOOP_SIZE or x.shape[0] != m or out.shape[0] != n:
            _copied(a @ x, out)     # large: BLAS; shapes that do not match: numba's error
        else:
            _row_dots(a, x, out)
    return impl


def _softmax_family_ol(name, kernel, shape_of):
    """numba overload of an axis softmax-like helper built on a flat kernel."""
    def typer(z, axis):
        _require_array(name, z=z)

        def impl(z, axis):
            r = kernel(_flat(z), _dims(z.shape, axis))
            return r.reshape(shape_of(z.shape, axis))
        return impl
    return typer


@register_jitable
def _same_shape(shape, axis):
    """shape itself."""
    return shape


overload(softmax_over)(
    _softmax_family_ol("softmax_over", _softmax_k, _same_shape))
overload(log_softmax_over)(
    _softmax_family_ol("log_softmax_over", _log_softmax_k, _same_shape))
overload(logsumexp_over_keep)(
    _softmax_family_ol("logsumexp_over_keep", _logsumexp_k, _keep_shape))


@overload(softmax_all)
def _softmax_all_ol(z):
    _require_array("softmax_all", z=z)
    return lambda z: _softmax_k(_flat(z), (1, z.size, 1)).reshape(z.shape)


@overload(log_softmax_all)
def _log_softmax_all_ol(z):
    _require_array("log_softmax_all", z=z)
    return lambda z: _log_softmax_k(_flat(z), (1, z.size, 1)).reshape(z.shape)


@overload(logsumexp_all)
def _logsumexp_all_ol(z):
    _require_array("logsumexp_all", z=z)
    return lambda z: _logsumexp_k(_flat(z), (1, z.size, 1))[0]


@overload(as_dtype_of)
def _as_dtype_of_ol(g, like):
    _require_array("as_dtype_of", like=like)
    if isinstance(g, types.Array):
        if g.dtype == like.dtype:
            return lambda g, like: g
        return lambda g, like: g.astype(like.dtype)
    if isinstance(g, types.Number):
        cast = as_dtype(like.dtype).type
        return lambda g, like: cast(g)
    raise TypingError(f"as_dtype_of: g must be an array or scalar, got {g}")
