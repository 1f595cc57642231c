"""Every gate srcdiff supports, checked against central finite differences.

`SPEC` is the single table: one row per gate, each with a small module-level
function using the gate, the argument(s) to differentiate and, per form
("scalar", "1d", "2d"), a maker of inputs drawn from the gate's domain and away
from its kinks. Each (row, form, dtype) is checked compiled and with
`compile=False` (see `conftest.assert_grad_matches_fd`): float64 with
check_grad's tight defaults, float32 with rtol 2e-2 and check_grad's default
(float32) step.

The conventions at the kinks (abs at 0, relu at 0, ties of maximum and max) are
tested exactly at the end of the file.
"""
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy import special

import srcdiff
from srcdiff import calls, nn, rules

from conftest import assert_grad_matches_fd

# ---- module-level constants read by the differentiated code ---------------------------
SCALE = 1.5
OFFSET = 0.25


# ---- the functions, one (or a few) per gate -----------------------------------------------
def g_add(x, y):
    return np.sum(np.sin(x + y))


def g_sub(x, y):
    return np.sum(np.sin(x - y))


def g_mul(x, y):
    return np.sum(np.sin(x * y))


def g_div(x, y):
    return np.sum(np.sin(x / y))


def g_mod(x, y):
    return np.sum(np.sin(x % y) * (x % y))


def g_logaddexp(x, y):
    return np.sum(np.logaddexp(x, y) * x) + np.sum(np.logaddexp(y, 0.5))


def g_diff(x):
    return np.sum(np.diff(x) ** 2 * x[1:]) + np.sum(np.diff(x, 2) ** 2) + np.sum(np.diff(x, n=3) * x[3:])


def g_diff_axis0(x):
    return np.sum(np.sin(np.diff(x, axis=0))) + np.sum(np.diff(x, 2, axis=0) ** 2)


def g_ravel_flatten(x):
    return np.sum(x.ravel() * np.cos(x.T.flatten()))


def g_builtin_sum(x):
    return np.sum(np.sin(sum(x)))


def g_interp(x, fp):
    xp = np.linspace(-3.0, 3.0, fp.shape[0])
    return np.sum(np.sin(np.interp(x, xp, fp)) * x) + np.interp(0.1 * np.sum(x), xp, fp * fp)


def g_median(x):
    return np.median(np.sin(x)) * np.median(x * x) + np.median(x[1:])


def g_flip(x):
    return np.sum(np.sin(np.flip(x, 0)) * x) + np.sum(np.flipud(x) * x * x)


def g_cumprod(x):
    return np.sum(np.sin(np.cumprod(x))) + x.cumprod()[-1]


def g_cumsum(x):
    return np.sum(np.sin(np.cumsum(x)) * np.cumsum(x * x)[-1])


def g_arange(x):
    return np.sum(x * np.arange(x.shape[0])) + np.sum(np.sin(x) * np.arange(0.5, 5.5, 1.0)[0])


def g_arange_bounds(a, h):
    t = np.arange(a, a + 3.5 * h, h)          # start and step differentiated: 4 entries
    return np.sum(t * t)


def g_linspace(L, x):
    return np.sum(np.sin(np.linspace(-L, 2.0 * L, 5)) * x)


def g_eye(x):
    return np.sum((x + 0.5 * np.eye(x.shape[0])) ** 2)


def g_pow_const(x):
    return np.sum(x ** 3.0) + np.sum(x ** 2) + np.sum(x ** 1) + np.sum(x ** 0) + np.sum(x ** -1.5)


def g_const_pow(x):
    return np.sum(2.0 ** x)


def g_pow_pow(x, y):
    return np.sum(x ** y)


def g_neg(x):
    return np.sum(np.sin(-x))


def g_matmul_22(a, b):
    return np.sum(np.sin(a @ b))


def g_matmul_12(a, b):
    return np.sum(np.sin(a @ b))


def g_matmul_21(a, b):
    return np.sum(np.sin(a @ b))


def g_matmul_11(a, b):
    return np.sin(a @ b)


def g_dot(a, b):
    return np.sum(np.sin(np.dot(a, b)))


def g_dot_T(x, y):
    return np.sum(np.sin(x.T @ y))


def g_transpose(x, y):
    return np.sum(np.sin(np.transpose(x) @ y))


def g_reshape_fn(x, y):
    return np.sum(np.sin(np.reshape(x, (4, 3)) @ y))


def g_reshape_method(x, y):
    return np.sum(np.sin(x.reshape(4, 3) @ y)) + np.sum(np.cos(x.reshape((2, 6))))


def g_exp(x):
    return np.sum(np.exp(x))


def g_log(x):
    return np.sum(np.log(x))


def g_sqrt(x):
    return np.sum(np.sqrt(x))


def g_sin(x):
    return np.sum(np.sin(x))


def g_cos(x):
    return np.sum(np.cos(x))


def g_tan(x):
    return np.sum(np.tan(x))


def g_tanh(x):
    return np.sum(np.tanh(x))


def g_abs(x):
    return np.sum(np.abs(x) * x)


def g_log1p(x):
    return np.sum(np.log1p(x))


def g_expm1(x):
    return np.sum(np.expm1(x))


def g_arctan(x):
    return np.sum(np.arctan(x))


def g_sinh(x):
    return np.sum(np.sinh(x))


def g_cosh(x):
    return np.sum(np.cosh(x))


def g_square(x):
    return np.sum(np.square(x) * x)


def g_power(x):
    return np.sum(x * x * x) + np.sum(x * (x * x) * x)


def g_power_shared_square(x):
    q = x * x
    return np.sum(q * x) + np.sum(np.sin(q))


def g_maximum(x, y):
    return np.sum(np.sin(np.maximum(x, y)))


def g_minimum(x, y):
    return np.sum(np.sin(np.minimum(x, y)))


def g_where(x, y):
    return np.sum(np.where(x > y, x * y, np.sin(x) - y))


def g_math_exp(x):
    return math.exp(x) * x


def g_math_log(x):
    return math.log(x) * x


def g_math_sqrt(x):
    return math.sqrt(x) * x


def g_math_sin(x):
    return math.sin(x) * x


def g_math_cos(x):
    return math.cos(x) * x


def g_math_tanh(x):
    return math.tanh(x) * x


def g_sum(x):
    a = np.sum(x, axis=0)
    b = np.sum(x, axis=0, keepdims=True)
    c = np.sum(x, axis=1)
    d = np.sum(x, axis=1, keepdims=True)
    e = np.sum(x, axis=-1)
    f = np.sum(x, axis=-1, keepdims=True)
    return (np.sum(np.sin(a)) + np.sum(np.cos(b)) + np.sum(np.sin(2.0 * c)) + np.sum(d * d)
            + np.sum(np.tanh(e)) + np.sum(np.sin(f) * f) + np.sin(np.sum(x, axis=None)) + x.sum())


def g_mean(x):
    a = np.mean(x, axis=0)
    b = np.mean(x, axis=0, keepdims=True)
    c = np.mean(x, axis=1)
    d = np.mean(x, axis=1, keepdims=True)
    e = np.mean(x, axis=-1)
    f = np.mean(x, axis=-1, keepdims=True)
    return (np.sum(np.sin(a)) + np.sum(np.cos(b)) + np.sum(np.sin(2.0 * c)) + np.sum(d * d)
            + np.sum(np.tanh(e)) + np.sum(np.sin(f) * f) + np.sin(np.mean(x, axis=None)) + x.mean())


def g_sum_axes(x):
    a = np.sum(x, axis=(0, 2))
    b = np.sum(x, axis=(1, 2), keepdims=True)
    c = np.sum(x, axis=(-1, -3))
    d = x.sum(axis=(2, 0, 1))
    return np.sum(np.sin(a)) + np.sum(np.cos(b) * x) + np.sum(np.tanh(c)) + np.sin(d)


def g_mean_axes(x):
    a = np.mean(x, axis=(0, 1))
    b = np.mean(x, axis=(0, -1), keepdims=True)
    c = x.mean(axis=(-2, -1))
    return np.sum(np.sin(a)) + np.sum(np.cos(b) * x) + np.sum(np.tanh(c))


def g_max(x):
    a = np.max(x, axis=0)
    b = np.max(x, axis=0, keepdims=True)
    c = np.max(x, axis=1)
    d = np.max(x, axis=1, keepdims=True)
    e = np.max(x, axis=-1)
    f = np.max(x, axis=-1, keepdims=True)
    return (np.sum(np.sin(a)) + np.sum(np.cos(b)) + np.sum(np.sin(2.0 * c)) + np.sum(d * d)
            + np.sum(np.tanh(e)) + np.sum(np.sin(f) * f) + np.sin(np.max(x, axis=None)) + x.max())


def g_min(x):
    a = np.min(x, axis=0)
    b = np.min(x, axis=0, keepdims=True)
    c = np.min(x, axis=1)
    d = np.min(x, axis=1, keepdims=True)
    e = np.min(x, axis=-1)
    f = np.min(x, axis=-1, keepdims=True)
    return (np.sum(np.sin(a)) + np.sum(np.cos(b)) + np.sum(np.sin(2.0 * c)) + np.sum(d * d)
            + np.sum(np.tanh(e)) + np.sum(np.sin(f) * f) + np.sin(np.min(x, axis=None)) + x.min())


def g_reduce_1d(x):
    return np.sin(np.sum(x)) + np.mean(x * x) + np.max(x) * 2.0 - np.min(x) * np.max(x, axis=0)


def g_shape_k(x):
    return np.sum(np.sin(x)) * x.shape[1] / x.shape[0] + np.sum(x * x) * x.shape[-1]


def g_shape_unpack(x, y):
    n, m = x.shape
    return np.sum(np.sin(x.reshape(m, n) @ y)) / n + m * np.sum(x)


def g_index_first(x):
    return np.sum(np.sin(x[0])) + np.sum(x[1] * x[1])


def g_index_ij(x, i, j):
    return np.sin(x[i, j]) * x[j, i] + x[0, 3]


def g_index_col(x):
    return np.sum(np.sin(x[:, 2])) + np.sum(x[:, 0] * x[:, 1])


def g_slice(x):
    return np.sum(np.sin(x[1:3])) + np.sum(x[:2] * x[2:4])


def g_slice_step(x):
    return np.sum(np.sin(x[::2])) + np.sum(np.cos(x[1::2]))


def g_globals(x):
    return np.sum(np.sin(SCALE * x + OFFSET))


def helper_mul_tanh(a, b):
    return a * np.tanh(b)


def g_user_call(x, y):
    return np.sum(helper_mul_tanh(x, y) + helper_mul_tanh(y, x) * x)


def g_relu(x):
    return np.sum(nn.relu(x) * x)


def g_sigmoid(x):
    return np.sum(nn.sigmoid(x))


def g_softmax(x):
    return np.sum(np.sin(3.0 * nn.softmax(x)))


def g_log_softmax(x):
    return np.sum(np.sin(nn.log_softmax(x)))


def g_logsumexp(x):
    return np.sum(np.sin(nn.logsumexp(x, axis=-1))) + nn.logsumexp(x)


def g_softmax_cross_entropy(z, y):
    return nn.softmax_cross_entropy(z, y)


def g_arcsin(x):
    return np.sum(np.arcsin(x) + np.arccos(0.5 * x))


def g_arcsinh(x):
    return np.sum(np.arcsinh(x) + np.arctanh(0.5 * x))


def g_arccosh(x):
    return np.sum(np.arccosh(x))


def g_log10_log2(x):
    return np.sum(np.log10(x) * np.log2(x))


def g_exp2(x):
    return np.sum(np.exp2(x))


def g_cbrt(x):
    return np.sum(np.cbrt(x))


def g_hypot(x, y):
    return np.sum(np.hypot(x, y))


def g_math_inverse_trig(x):
    return math.asin(x) * math.acos(x) + math.asinh(x) + math.atanh(x) + math.hypot(x, 2.0 * x)


def g_math_erf(x):
    return math.erf(x) + math.erfc(2.0 * x)


def g_math_logs(x, b):
    return math.log(x, b) + math.log10(x) * math.log2(b) + math.exp2(x) + math.cbrt(x)


def g_array_of_numbers(x, y):
    v = np.array([x, -2.0 * y, x * y, 1]) + np.array([y, 1, 2, 3], dtype=np.float64)
    R = np.array([[np.cos(x), -np.sin(x)], (np.sin(x), y)])
    return np.sum(np.sin(v) * v) + np.sum(R @ np.array([y, 0.5]))


def g_concatenate(x, y):
    v = np.concatenate((x, 2.0 * y, x))
    return np.sum(np.sin(v) * np.arange(v.shape[0]))


def g_concatenate_axes(x, y):
    return (np.sum(np.tanh(np.concatenate([x, y], axis=1)) * 1.5)
            + np.sum(np.concatenate((x, y * y), axis=-2) ** 3))


def g_stack(x, y):
    return np.sum(np.sin(np.stack((x, y))) * 2.0) + np.sum(np.stack([x, y * x], axis=-1) ** 3)


def g_gather(x):
    rows = np.array([0, 2, 2, 1, 0])       # repeats: their adjoints add up
    return np.sum(np.sin(x[rows]) ** 2) + np.sum(x[rows] * 0.5)


def g_gather_rows(x):
    rows = np.array([0, 2, 2, 1, 0])
    return np.sum(np.sin(x[rows, :]) * np.arange(1.0, 6.0)[:, None]) + np.sum(x[rows[1:]] ** 2)


def g_mask(x):
    y = x * 1.5
    y[x < 0.0] = 0.0
    y[x > 0.5] += x[x > 0.5] ** 2
    return np.sum(y[y > 0.2] ** 3) + np.sum(x[x < 0.0]) + np.sum(x[x > -2.0] * 0.5)


def g_mask_rows(x):
    keep = x[:, 0] > 0.0
    y = x * 2.0
    y[keep] = y[keep] ** 2
    return np.sum(np.sin(y[keep])) + np.sum(x[x[:, 1] < 0.0] ** 2)


def g_hvstack(x, y):
    return (np.sum(np.hstack((x, y)) ** 2) + np.sum(np.sin(np.vstack((x, 2.0 * y))))
            + np.sum(np.column_stack([x, y * x]) ** 3))


def g_full(x, s):
    return np.sum(np.full((2, 3), s) * s) + np.sum(np.full_like(x, s * s) * x) + np.sum(np.full(x.shape[-1], 2.0) * x[0])


def g_sort_and_positions(x):
    s = np.sort(x)
    return (np.sum(s * np.arange(1.0, x.shape[0] + 1.0)) + x[np.argmax(x)] * 2.0 - x[np.argmin(x)]
            + round(x[0] * 3.0) * x[1] + max(x) * min(x))


def g_trapezoid_angles(y, x):
    return (np.trapezoid(y * y, x) + np.trapezoid(np.sin(y), dx=0.5) + np.trapezoid(y)
            + np.sum(np.sin(np.radians(y * 40.0))) + math.degrees(x[0]) * y[0])


def g_array_of_an_array(x, w):
    x = np.asarray(x, dtype=np.float64)
    y = np.array(w)
    y[0] = 3.0
    return np.sum(np.ravel(x * y)) + np.sum(np.reciprocal(np.asarray(w) + 2.0)) + np.sum(np.asarray(x))


def g_special(x):
    return (np.sum(special.expit(x) * x) + np.sum(special.erf(x) ** 2) + np.sum(special.erfc(x))
            + np.sum(special.gammaln(x * x + 0.5)) + special.logsumexp(x))


def g_lgamma(x):
    return math.lgamma(x * x + 0.5) + math.lgamma(x + 3.0) * x


def g_inv(a):
    return np.sum(np.sin(np.linalg.inv(a)))


def g_cholesky(a):
    lower = np.linalg.cholesky(a)
    return np.sum(np.sin(lower)) + np.sum(np.log(np.diag(lower)))


def g_det(a):
    return np.linalg.det(a) ** 2 + np.linalg.det(a * 0.5)


def g_slogdet(a):
    sign, logdet = np.linalg.slogdet(a)
    flipped, logdet_flipped = np.linalg.slogdet(-a)
    return sign * logdet ** 2 + flipped * logdet_flipped


def g_solve(a, b):
    return np.sum(np.linalg.solve(a, b) ** 2)


def g_trace(a, b):
    return np.trace(a @ b) + np.trace(a) ** 2


def g_prod(x):
    return np.prod(x) + np.prod(np.sin(x))


def g_cross(a, b):
    return np.sum(np.sin(np.cross(a, b)))


def g_roll(x, shift):
    return np.sum(np.roll(x, shift) * x * x) + np.sum(np.roll(x, -2) * x)


def g_roll_axis(x, shift):
    return (np.sum(np.roll(x, shift, axis=0) * x * x) + np.sum(np.roll(x, -1, axis=-1) * np.sin(x))
            + np.sum(np.roll(x, 2, 0) * x))


def g_diag(x):
    return np.sum(np.sin(np.diag(x))) + np.sum(np.diag(x, 1) ** 2) + np.sum(np.diag(x, -1) ** 3)


def g_triangles(a):
    return np.sum(np.tril(a) ** 2 + np.triu(a, 1) * 3.0 + np.tril(a, -1) * np.triu(a))


def g_array_of_arrays(x, y):
    return np.sum(np.sin(np.array([x, 2.0 * y, x * y])))


def g_astype(x):
    return np.sum(np.sin(x.astype(np.float64) * 2.0) * x.astype(float))


# ---- input makers: each returns a tuple of float64 values (or ints) -------------------
def real(*shapes, low=-1.5, high=1.5):
    return lambda rng: tuple(_draw(rng.uniform(low, high, size=s)) for s in shapes)


def positive(*shapes, low=0.5, high=2.0):
    return real(*shapes, low=low, high=high)


def nonzero(*shapes, low=0.3, high=1.5):
    """Magnitudes in [low, high] with random signs: away from the kink at 0."""
    return lambda rng: tuple(_draw(rng.choice([-1.0, 1.0], size=s) * rng.uniform(low, high, size=s))
                             for s in shapes)


def separated(shape):
    """(x, y) with |x - y| >= 0.3 entrywise: no ties for maximum/minimum/where."""
    def make(rng):
        x = rng.uniform(-1.5, 1.5, size=shape)
        y = x + rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 1.0, size=shape)
        return _draw(x), _draw(y)
    return make


def distinct(shape):
    """Entries at least 0.2 apart: no ties for max/min reductions."""
    def make(rng):
        n = int(np.prod(shape))
        values = rng.permutation(n) * 0.25 - 0.125 * n + rng.uniform(-0.02, 0.02, size=n)
        return (values.reshape(shape),)
    return make


def mod_inputs(x_shape, y_shape):
    """(x, y) with x / y away from whole numbers: no jumps of x % y nearby (y of either sign)."""
    def make(rng):
        y = nonzero(y_shape, low=0.5)(rng)[0]
        whole = rng.integers(-3, 4, size=x_shape)
        return _draw(y * (whole + rng.uniform(0.2, 0.8, size=x_shape))), y
    return make


def well_conditioned(n):
    """A random n x n matrix near 3 I: far from singular."""
    return lambda rng: (3.0 * np.eye(n) + rng.uniform(-0.5, 0.5, size=(n, n)),)


def with_shapes(*makers):
    return lambda rng: tuple(value for make in makers for value in make(rng))


def with_ints(maker, *ints):
    return lambda rng: maker(rng) + tuple(ints)


def cross_entropy_inputs(shape):
    def make(rng):
        z = rng.uniform(-2.0, 2.0, size=shape)
        y = rng.uniform(0.1, 1.0, size=shape)
        return z, y / np.sum(y, axis=-1, keepdims=True)
    return make


def _draw(value):
    return float(value) if np.ndim(value) == 0 else value


S, V, M = (), (5,), (3, 4)


@dataclass
class Gate:
    """One row of the spec table."""
    name: str
    fn: object
    wrt: object = 0
    forms: dict = field(default_factory=dict)


SPEC = [
    # arithmetic
    Gate("add", g_add, (0, 1), {"scalar": real(S, S), "1d": real(V, V)}),
    Gate("sub", g_sub, (0, 1), {"scalar": real(S, S), "1d": real(V, V)}),
    Gate("mul", g_mul, (0, 1), {"scalar": real(S, S), "1d": real(V, V)}),
    Gate("div", g_div, (0, 1), {"scalar": lambda r: real(S)(r) + nonzero(S, low=0.5)(r),
                                "1d": lambda r: real(V)(r) + nonzero(V, low=0.5)(r)}),
    Gate("mod", g_mod, (0, 1), {"scalar": mod_inputs(S, S), "1d": mod_inputs(V, V),
                                "2d": mod_inputs(M, S)}),
    Gate("np.logaddexp", g_logaddexp, (0, 1), {"1d": real(V, V), "2d": real(M, M)}),
    Gate("np.diff", g_diff, 0, {"1d": real(V)}),
    Gate("np.diff-axis0", g_diff_axis0, 0, {"1d": real(V), "2d": real(M)}),
    Gate(".ravel-.flatten", g_ravel_flatten, 0, {"2d": real(M)}),
    Gate("builtin-sum", g_builtin_sum, 0, {"1d": real(V), "2d": real(M)}),
    Gate("np.cumsum", g_cumsum, 0, {"1d": real(V), "2d": real(M)}),
    Gate("np.interp", g_interp, (0, 1), {"1d": real(V, (7,)), "2d": real(M, (7,))}),
    Gate("np.median", g_median, 0, {"1d": real((7,)), "2d": real(M)}),
    Gate("np.flip-flipud-fliplr", g_flip, 0, {"1d": real(V), "2d": real(M)}),
    Gate("np.cumprod", g_cumprod, 0, {"1d": real(V), "2d": real(M)}),
    Gate("np.arange", g_arange, 0, {"1d": real(V)}),
    Gate("np.arange-bounds", g_arange_bounds, (0, 1), {"scalar": positive(S, S)}),
    Gate("np.linspace", g_linspace, (0, 1), {"1d": real(S, V)}),
    Gate("np.eye", g_eye, 0, {"2d": real((3, 3))}),
    Gate("pow-array-const", g_pow_const, 0, {"scalar": positive(S), "1d": positive(V)}),
    Gate("pow-const-array", g_const_pow, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("pow-array-array", g_pow_pow, (0, 1), {"scalar": positive(S, S), "1d": positive(V, V)}),
    Gate("neg", g_neg, 0, {"scalar": real(S), "1d": real(V)}),
    # linear algebra and layout
    Gate("matmul-(n,m)@(m,k)", g_matmul_22, (0, 1), {"2d": real((3, 4), (4, 2))}),
    Gate("matmul-(n,)@(n,m)", g_matmul_12, (0, 1), {"2d": real((3,), (3, 4))}),
    Gate("matmul-(n,m)@(m,)", g_matmul_21, (0, 1), {"2d": real((3, 4), (4,))}),
    Gate("matmul-(n,)@(n,)", g_matmul_11, (0, 1), {"1d": real(V, V)}),
    Gate("np.dot", g_dot, (0, 1), {"2d": real((3, 4), (4, 2))}),
    Gate(".T", g_dot_T, (0, 1), {"2d": real((3, 4), (3, 2))}),
    Gate("np.transpose", g_transpose, (0, 1), {"2d": real((3, 4), (3, 2))}),
    Gate("np.reshape", g_reshape_fn, (0, 1), {"2d": real((3, 4), (3, 2))}),
    Gate(".reshape", g_reshape_method, (0, 1), {"2d": real((3, 4), (3, 2))}),
    # elementwise
    Gate("exp", g_exp, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("log", g_log, 0, {"scalar": positive(S), "1d": positive(V)}),
    Gate("sqrt", g_sqrt, 0, {"scalar": positive(S), "1d": positive(V)}),
    Gate("sin", g_sin, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("cos", g_cos, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("tan", g_tan, 0, {"scalar": real(S, low=-1.0, high=1.0), "1d": real(V, low=-1.0, high=1.0)}),
    Gate("tanh", g_tanh, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("abs", g_abs, 0, {"scalar": nonzero(S), "1d": nonzero(V)}),
    Gate("log1p", g_log1p, 0, {"scalar": real(S, low=-0.5, high=2.0), "1d": real(V, low=-0.5, high=2.0)}),
    Gate("expm1", g_expm1, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("arctan", g_arctan, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("sinh", g_sinh, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("arcsin-arccos", g_arcsin, 0, {"scalar": real(S, low=-0.9, high=0.9),
                                        "1d": real(V, low=-0.9, high=0.9)}),
    Gate("arcsinh-arctanh", g_arcsinh, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("arccosh", g_arccosh, 0, {"scalar": positive(S, low=1.2, high=3.0),
                                   "1d": positive(V, low=1.2, high=3.0)}),
    Gate("log10-log2", g_log10_log2, 0, {"scalar": positive(S), "1d": positive(V)}),
    Gate("exp2", g_exp2, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("cbrt", g_cbrt, 0, {"scalar": nonzero(S), "1d": nonzero(V)}),
    Gate("hypot", g_hypot, (0, 1), {"scalar": nonzero(S, S), "1d": nonzero(V, V),
                                    "2d": nonzero(M, (4,))}),
    Gate("cosh", g_cosh, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("square", g_square, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("power", g_power, 0, {"scalar": real(S), "1d": real(V), "2d": real(M)}),
    Gate("power-shared-square", g_power_shared_square, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("maximum", g_maximum, (0, 1), {"scalar": separated(S), "1d": separated(V)}),
    Gate("minimum", g_minimum, (0, 1), {"scalar": separated(S), "1d": separated(V)}),
    Gate("where", g_where, (0, 1), {"scalar": separated(S), "1d": separated(V)}),
    # math on scalars
    Gate("math.exp", g_math_exp, 0, {"scalar": real(S)}),
    Gate("np.array-of-numbers", g_array_of_numbers, (0, 1), {"scalar": real(S, S)}),
    Gate("np.concatenate", g_concatenate, (0, 1), {"1d": real(V, (3,))}),
    Gate("np.concatenate-axis", g_concatenate_axes, (0, 1), {"2d": real(M, M)}),
    Gate("np.stack", g_stack, (0, 1), {"1d": real(V, V), "2d": real(M, M)}),
    Gate("np.hstack-vstack-column_stack", g_hvstack, (0, 1), {"1d": real(V, V), "2d": real(M, M)}),
    Gate("np.full-full_like", g_full, (0, 1), {"1d": real(V, S), "2d": real(M, S)}),
    Gate("np.asarray-np.array(x)-np.ravel-np.reciprocal", g_array_of_an_array, (0, 1),
         {"1d": real(V, V), "2d": real(M, (4,))}),
    Gate(".astype", g_astype, 0, {"1d": real(V), "2d": real(M)}),
    Gate("np.linalg.inv", g_inv, 0, {"2d": well_conditioned(3)}),
    Gate("np.linalg.det", g_det, 0, {"2d": well_conditioned(3)}),
    Gate("np.linalg.cholesky", g_cholesky, 0, {"2d": well_conditioned(4)}),
    Gate("np.linalg.slogdet", g_slogdet, 0, {"2d": well_conditioned(3)}),
    Gate("np.linalg.solve", g_solve, (0, 1), {"1d": with_shapes(well_conditioned(3), real((3,))),
                                              "2d": with_shapes(well_conditioned(3), real((3, 2)))}),
    Gate("np.trace", g_trace, (0, 1), {"2d": real((3, 4), (4, 3))}),
    Gate("np.prod", g_prod, 0, {"1d": nonzero(V), "2d": nonzero(M)}),
    Gate("np.cross", g_cross, (0, 1), {"1d": real((3,), (3,)), "2d": real((4, 3), (3,))}),
    Gate("np.roll", g_roll, 0, {"1d": with_ints(real(V), 2), "2d": with_ints(real(M), -1)}),
    Gate("np.roll-axis", g_roll_axis, 0, {"1d": with_ints(real(V), 3), "2d": with_ints(real(M), -2)}),
    Gate("np.diag", g_diag, 0, {"1d": real(V), "2d": real((4, 3))}),
    Gate("np.tril-np.triu", g_triangles, 0, {"2d": real((3, 4))}),
    Gate("np.array-of-arrays", g_array_of_arrays, (0, 1), {"1d": real(V, V), "2d": real(M, M)}),
    Gate("math.asin-acos-asinh-atanh-hypot", g_math_inverse_trig, 0,
         {"scalar": real(S, low=-0.6, high=0.6)}),
    Gate("math.erf-erfc", g_math_erf, 0, {"scalar": real(S)}),
    Gate("math.lgamma", g_lgamma, 0, {"scalar": real(S)}),
    Gate("np.sort-argmax-argmin-round-max", g_sort_and_positions, 0, {"1d": distinct(V)}),
    Gate("np.trapezoid-radians-degrees", g_trapezoid_angles, (0, 1), {"1d": real(V, V)}),
    Gate("scipy.special", g_special, 0, {"1d": real(V), "2d": real(M)}),
    Gate("math.log-base-log10-log2-exp2-cbrt", g_math_logs, (0, 1),
         {"scalar": positive(S, S, low=1.5, high=3.0)}),
    Gate("math.log", g_math_log, 0, {"scalar": positive(S)}),
    Gate("math.sqrt", g_math_sqrt, 0, {"scalar": positive(S)}),
    Gate("math.sin", g_math_sin, 0, {"scalar": real(S)}),
    Gate("math.cos", g_math_cos, 0, {"scalar": real(S)}),
    Gate("math.tanh", g_math_tanh, 0, {"scalar": real(S)}),
    # reductions: axis 0, 1, -1, None, keepdims True/False (None + keepdims=True is rejected)
    Gate("sum", g_sum, 0, {"2d": distinct(M)}),
    Gate("mean", g_mean, 0, {"2d": distinct(M)}),
    Gate("sum-axes", g_sum_axes, 0, {"3d": real((2, 3, 4))}),
    Gate("mean-axes", g_mean_axes, 0, {"3d": real((2, 3, 4))}),
    Gate("max", g_max, 0, {"2d": distinct(M)}),
    Gate("min", g_min, 0, {"2d": distinct(M)}),
    Gate("reductions-1d", g_reduce_1d, 0, {"1d": distinct(V)}),
    # shapes and indexing
    Gate("x.shape[k]", g_shape_k, 0, {"2d": real(M)}),
    Gate("n, m = x.shape", g_shape_unpack, (0, 1), {"2d": real(M, (3, 2))}),
    Gate("x[0]", g_index_first, 0, {"1d": real(V), "2d": real(M)}),
    Gate("x[i, j]", g_index_ij, 0, {"2d": with_ints(real(M), 1, 2)}),
    Gate("x[:, k]", g_index_col, 0, {"2d": real(M)}),
    Gate("x[1:3]", g_slice, 0, {"1d": real(V)}),
    Gate("x[::2]", g_slice_step, 0, {"1d": real(V)}),
    Gate("x[index-vector]", g_gather, 0, {"1d": real(V), "2d": real(M)}),
    Gate("x[index-vector, :]", g_gather_rows, 0, {"2d": real(M)}),
    Gate("x[mask]", g_mask, 0, {"1d": nonzero(V)}),
    Gate("x[row-mask]", g_mask_rows, 0, {"2d": nonzero((5, 3))}),
    # names resolved statically
    Gate("module-globals", g_globals, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("user-function", g_user_call, (0, 1), {"scalar": real(S, S), "1d": real(V, V)}),
    # srcdiff.nn
    Gate("nn.relu", g_relu, 0, {"scalar": nonzero(S), "1d": nonzero(V)}),
    Gate("nn.sigmoid", g_sigmoid, 0, {"scalar": real(S), "1d": real(V)}),
    Gate("nn.softmax", g_softmax, 0, {"1d": real(V), "2d": real(M)}),
    Gate("nn.log_softmax", g_log_softmax, 0, {"1d": real(V), "2d": real(M)}),
    Gate("nn.logsumexp", g_logsumexp, 0, {"1d": real(V), "2d": real(M)}),
    Gate("nn.softmax_cross_entropy", g_softmax_cross_entropy, (0, 1),
         {"1d": cross_entropy_inputs(V), "2d": cross_entropy_inputs(M)}),
]


def convert(value, dtype):
    """Float inputs in `dtype` (float32 scalars as np.float32); ints stay ints."""
    if isinstance(value, int):
        return value
    if np.ndim(value) == 0:
        return float(value) if dtype == "float64" else np.float32(value)
    return np.asarray(value, dtype=dtype)


def inputs(gate, form, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{gate.name}/{form}".encode()))
    return tuple(convert(v, dtype) for v in gate.forms[form](rng))


TOLERANCES = {
    "float64": dict(rtol=1e-5, atol=1e-7, agree_rtol=1e-10),
    "float32": dict(rtol=2e-2, atol=1e-3, agree_rtol=1e-5),
}

CASES = [pytest.param(gate, form, dtype, id=f"{gate.name}-{form}-{dtype}")
         for gate in SPEC for form in gate.forms for dtype in ("float64", "float32")]


@pytest.mark.parametrize("gate, form, dtype", CASES)
def test_gate_matches_finite_differences(gate, form, dtype):
    args = inputs(gate, form, dtype)
    grads = assert_grad_matches_fd(gate.fn, args, gate.wrt, **TOLERANCES[dtype])
    positions = gate.wrt if isinstance(gate.wrt, tuple) else (gate.wrt,)
    for position, g in zip(positions, grads):
        x = args[position]
        assert np.shape(g) == np.shape(x)
        if isinstance(x, np.ndarray):
            assert g.dtype == x.dtype, f"d{position}: dtype {g.dtype}, argument {x.dtype}"


def test_spec_covers_every_gate_once():
    names = [gate.name for gate in SPEC]
    assert len(names) == len(set(names))
    for gate in SPEC:
        assert gate.forms, gate.name
        assert set(gate.forms) <= {"scalar", "1d", "2d", "3d"}


# ---- steps and tests: a zero gradient, through the values they multiply ----------------------
def steps(x):
    return np.sum(x * np.floor(x) + np.ceil(x) * x + np.round(x) * x + np.rint(2.0 * x) * x
                  + np.where(np.logical_and(np.isfinite(x), np.logical_not(np.isnan(x))), x, 0.0)
                  + np.where(np.isinf(x), 0.0, x))


def steps_of_a_number(x):
    y = math.floor(x) * x + math.ceil(x) * x + np.round(x) * x
    if math.isfinite(x) and not math.isnan(x) and not math.isinf(x):
        y = y + x
    return y


def test_steps_and_tests_pass_no_gradient():
    x = np.array([0.3, 1.7, -0.6, 2.2])
    grads = assert_grad_matches_fd(steps, (x,))
    np.testing.assert_array_equal(grads[0], np.floor(x) + np.ceil(x) + np.round(x) + np.rint(2.0 * x) + 2.0)
    assert_grad_matches_fd(steps, (x.astype(np.float32),), **TOLERANCES["float32"])
    assert assert_grad_matches_fd(steps_of_a_number, (1.3,))[0] == 1.0 + 2.0 + 1.0 + 1.0


# ---- the conventions at non-differentiable points, exactly ----------------------------------
def abs_sum(x):
    return np.sum(np.abs(x))


def abs_scalar(x):
    return abs(x)


def relu_sum(x):
    return np.sum(nn.relu(x))


def maximum_sum(x, y):
    return np.sum(np.maximum(x, y))


def minimum_sum(x, y):
    return np.sum(np.minimum(x, y))


def max_scalar(x, y):
    return max(x, y)


def vector_max(x):
    return np.max(x)


def vector_min(x):
    return np.min(x)


def row_max(x):
    return np.sum(np.max(x, axis=1))


def power_of(x, p):
    return x ** p


def power_sum(x, p):
    return np.sum(np.abs(x) ** p)


def series(x, c):
    s = 0.0
    for j in range(c.shape[0]):
        s += c[j] * x ** j
    return s


MODES = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])


@MODES
def test_abs_at_zero_has_zero_derivative(compiled):
    x = np.array([0.0, 2.0, -3.0, 0.0])
    np.testing.assert_array_equal(srcdiff.grad(abs_sum, compile=compiled)(x), [0.0, 1.0, -1.0, 0.0])
    assert srcdiff.grad(abs_scalar, compile=compiled)(0.0) == 0.0
    assert srcdiff.grad(abs_scalar, compile=compiled)(-2.0) == -1.0


@MODES
def test_power_slopes_are_zero_at_a_zero_exponent_and_a_zero_base(compiled):
    # x ** 0 is 1 for every x, 0 ** p is 0 for every p > 0 (JAX and PyTorch agree)
    g = srcdiff.grad(power_of, wrt=(0, 1), compile=compiled)
    assert g(0.0, 2.0) == (0.0, 0.0) and g(0.0, 0.0) == (0.0, 0.0) and g(3.0, 0.0) == (0.0, math.log(3.0))
    assert g(0.0, 1.0) == (1.0, 0.0)
    assert srcdiff.grad(series, compile=compiled)(0.0, np.array([1.0, 2.0, 3.0])) == 2.0
    x = np.array([0.0, 1.0, 2.0])
    dx, dp = srcdiff.grad(power_sum, wrt=(0, 1), compile=compiled)(x, 2.5)
    np.testing.assert_allclose(dx, 2.5 * x ** 1.5, rtol=1e-15)
    assert dp == pytest.approx(2.0 ** 2.5 * math.log(2.0), rel=1e-15)
    assert_grad_matches_fd(power_sum, (np.array([0.5, 1.0, 2.0]), 2.5), wrt=(0, 1))
    assert_grad_matches_fd(series, (0.7, np.array([1.0, 2.0, 3.0])))


@MODES
def test_relu_at_zero_has_zero_derivative(compiled):
    x = np.array([0.0, 1.5, -0.5, 0.0])
    np.testing.assert_array_equal(srcdiff.grad(relu_sum, compile=compiled)(x), [0.0, 1.0, 0.0, 0.0])


@MODES
def test_maximum_and_minimum_split_a_tie_evenly(compiled):
    x = np.array([1.0, 2.0, -1.0])
    y = np.array([1.0, 0.0, -1.0])
    for fn, dx, dy in ((maximum_sum, [0.5, 1.0, 0.5], [0.5, 0.0, 0.5]),
                       (minimum_sum, [0.5, 0.0, 0.5], [0.5, 1.0, 0.5])):
        gx, gy = srcdiff.grad(fn, wrt=(0, 1), compile=compiled)(x, y)
        np.testing.assert_array_equal(gx, dx, err_msg=fn.__name__)
        np.testing.assert_array_equal(gy, dy, err_msg=fn.__name__)
    assert srcdiff.grad(max_scalar, wrt=(0, 1), compile=compiled)(0.75, 0.75) == (0.5, 0.5)


@MODES
def test_max_reduction_shares_a_tie_equally(compiled):
    x = np.array([1.0, 3.0, 3.0, 0.0])
    np.testing.assert_array_equal(srcdiff.grad(vector_max, compile=compiled)(x), [0.0, 0.5, 0.5, 0.0])
    y = np.array([-2.0, 5.0, -2.0, 4.0])
    np.testing.assert_array_equal(srcdiff.grad(vector_min, compile=compiled)(y), [0.5, 0.0, 0.5, 0.0])
    rows = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, 1.0, -1.0, 0.5]])
    np.testing.assert_array_equal(srcdiff.grad(row_max, compile=compiled)(rows),
                                  [[0, 0.5, 0.5, 0], [0.25] * 4, [0, 1, 0, 0]])


# ---- the call tables and the rule table agree --------------------------------------------
def call_gates():
    """(callee description, gate) for every entry of the tables in srcdiff.calls."""
    found = []
    tables = [("ELEMENTWISE", calls.ELEMENTWISE), ("BINARY", calls.BINARY),
              ("REDUCTIONS", calls.REDUCTIONS), ("CREATION", calls.CREATION), ("LIKE", calls.LIKE),
              ("METHODS", calls.METHODS)]
    tables += [(f"DISPATCH[{i}]", table) for i, (table, _) in enumerate(calls.DISPATCH)]
    for label, table in tables:
        for callee, gate in table.items():
            found.append((f"{label}: {getattr(callee, '__name__', callee)}", gate))
    # the scalar casts lower to the gates of the same name, and len() to "dim"
    found += [("SCALAR_CASTS: float", "float"), ("SCALAR_CASTS: int", "int"),
              ("SCALAR_CASTS: len", "dim"), ("SCALAR_CASTS: np.float64", "float"),
              ("SCALAR_CASTS: np.float32", "float32")]
    # builtin min/max and array attributes
    found += [("builtins.min", "minimum"), ("builtins.max", "maximum"), ("x.T", "transpose"),
              ("x.size", "size"), ("x.ndim", "ndim")]
    return found


def test_every_call_table_gate_has_a_rule():
    assert set(calls.SCALAR_CASTS) == {float, int, len, np.float64, np.float32}
    # var, std, norm, clip, logaddexp, diff and the flips are written with other gates
    # (srcdiff/composites.py), .ravel() and .flatten() with reshape, slogdet as the pair of
    # gates det_sign and logdet
    composite = {"var", "std", "norm", "clip", "logaddexp", "diff", "ravel", "flatten", "slogdet",
                 "full", "full_like", "radians", "degrees", "trapezoid", "ravel", "reciprocal", "flip", "flipud", "fliplr"}
    missing = [(callee, gate) for callee, gate in call_gates()
               if gate not in rules.RULES and gate not in rules.NON_DIFFERENTIABLE
               and gate not in rules.SWEEP_GATES and gate not in composite]
    assert not missing, f"gates without an adjoint rule: {missing}"


def test_rule_sets_are_disjoint():
    assert not (set(rules.RULES) & rules.NON_DIFFERENTIABLE)
    assert not (set(rules.RULES) & rules.SWEEP_GATES)
    assert not (rules.NON_DIFFERENTIABLE & rules.SWEEP_GATES)


def test_spec_rows_exercise_their_gate():
    """Sanity of the table itself: each row's function is lowered to a graph with its gate."""
    from srcdiff.frontend import lower
    from srcdiff.graph import Op

    expected = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "neg": "neg",
                "np.dot": "matmul", ".T": "transpose", "np.transpose": "transpose",
                "np.reshape": "reshape", ".reshape": "reshape", "maximum": "maximum",
                "minimum": "minimum", "where": "where", "sum": "sum", "mean": "mean", "max": "max",
                "min": "min", "nn.relu": "relu", "nn.sigmoid": "sigmoid", "nn.softmax": "softmax",
                "nn.log_softmax": "log_softmax", "nn.logsumexp": "logsumexp",
                "nn.softmax_cross_entropy": "softmax_cross_entropy"}
    for name in ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "abs", "log1p", "expm1",
                 "arctan", "sinh", "cosh", "square"):
        expected[name] = name
    for name in ("exp", "log", "sqrt", "sin", "cos", "tanh"):
        expected["math." + name] = name

    def gates_of(block):
        for stmt in block:
            if isinstance(stmt, Op):
                yield stmt.gate
            for attr in ("body", "orelse", "test_block"):
                yield from gates_of(getattr(stmt, attr, None) or [])

    for gate in SPEC:
        if gate.name in expected:
            assert expected[gate.name] in set(gates_of(lower(gate.fn).body)), gate.name
