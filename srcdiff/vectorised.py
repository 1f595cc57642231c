"""Elementwise functions whose compiled loops the CPU runs on several entries at once.

numba evaluates `np.tanh`, `np.exp` or `np.log` on an array by calling the C library for
every entry: tanh takes 8-14 ns an entry here (most of a tanh RNN's time), exp 3-5 ns,
log 2.5 ns. The kernels below are straight-line arithmetic (one polynomial, no calls and
no branches), so LLVM turns their loops into vector instructions: about 1 ns an entry.
tanh is within 3 units in the last place of NumPy's, exp and log within 1, and float32
results are correctly rounded. Without compiling, these functions are NumPy's.

The loop is a function of its own, called with the argument computed into an array:
inlined into a big gradient (as a numba ufunc fused with the arithmetic around it would
be) it made LLVM compile the rest of that gradient worse.
"""
import math

import numpy as np
from llvmlite import ir
from numba import literal_unroll, types
from numba.extending import intrinsic

from .cached import overload, register_jitable

LN2_HIGH = 6.93147180369123816490e-01      # ln 2 split so that k * LN2_HIGH is exact
LN2_LOW = 1.90821492927058770002e-10
LOG2_E = 1.4426950408889634
SATURATED = 20.0                           # tanh(20) is 1 in double precision
EXP_OVERFLOW = 709.782712893384            # exp of more is inf, of less than
EXP_UNDERFLOW = -745.1332191019412         # this is 0
FEW = 8
TANH, EXP, LOG = 0, 1, 2                   # which function a kernel computes
SMALLEST_NORMAL = 2.2250738585072014e-308
TWO_TO_54 = 2.0 ** 54
SQRT_2 = 1.4142135623730951
MANTISSA_BITS = (1 << 52) - 1
ONE_BITS = 1023 << 52                      # the bits of 1.0
EXPM1_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(13, 1, -1))    # 1/13!, ..., 1/2!
ATANH_SERIES = tuple(2.0 / n for n in range(23, 1, -2))                    # 2/23, ..., 2/3


def tanh(x):
    """np.tanh(x); compiled, for float arrays, a vectorised kernel."""
    return np.tanh(x)


def exp(x):
    """np.exp(x); compiled, for float arrays, a vectorised kernel."""
    return np.exp(x)


def log(x):
    """np.log(x); compiled, for float arrays, a vectorised kernel."""
    return np.log(x)


def _entrywise_ol(numpy_function, kind):
    """numba overload: float arrays through the kernels (which numba caches on disk, while
    it compiles overloads in every process), the rest NumPy's."""
    def typer(x):
        if not (isinstance(x, types.Array) and isinstance(x.dtype, types.Float) and x.ndim):
            return lambda x: numpy_function(x)
        if x.ndim == 1:         # no reshapes: they cost more than the work on a few entries
            return lambda x: _of_vector(x, kind)
        if x.layout == "F":     # Fortran order in, Fortran order out, as numba's ufuncs do
            return lambda x: _of_vector(x.T.reshape(x.size), kind).reshape(x.T.shape).T
        return lambda x: _of_vector(np.ascontiguousarray(x).reshape(x.size), kind).reshape(x.shape)
    return typer


@register_jitable(error_model="numpy")
def _of_vector(x, kind):
    """The function `kind` names, entry by entry. Below FEW entries, the vector loop's set-up
    costs more than the C library's calls. (error_model="numpy" here and in the loops leaves
    out zero-division checks, which stop vectorising.)"""
    out = np.empty(x.shape, x.dtype)
    if x.size < FEW:
        for i in range(x.size):
            v = x[i]
            out[i] = np.tanh(v) if kind == TANH else np.exp(v) if kind == EXP else np.log(v)
    elif kind == TANH:
        _tanh_loop(x, out)
    elif kind == EXP:
        _exp_loop(x, out)
    else:
        _log_loop(x, out)
    return out


@register_jitable(error_model="numpy")
def _tanh_loop(x, out):
    for i in range(x.size):
        out[i] = _tanh_of(float(x[i]))


@register_jitable(error_model="numpy")
def _exp_loop(x, out):
    for i in range(x.size):
        out[i] = _exp_of(float(x[i]))


@register_jitable(error_model="numpy")
def _log_loop(x, out):
    for i in range(x.size):
        out[i] = _log_of(float(x[i]))


overload(tanh)(_entrywise_ol(np.tanh, TANH))
overload(exp)(_entrywise_ol(np.exp, EXP))
overload(log)(_entrywise_ol(np.log, LOG))


@register_jitable(inline="always")
def _tanh_of(v):
    """tanh(v) = -m / (m + 2) with m = expm1(-2|v|) = 2^k (1 + expm1(r)) - 1, where
    -2|v| = k ln 2 + r and |r| <= ln 2 / 2 (2^k - 1 is exact, so m is accurate near 0 too)."""
    k, r = _reduced(-2.0 * min(abs(v), SATURATED))
    scale = _power_of_two(k)
    m = scale * _expm1_reduced(r) + (scale - 1.0)
    t = math.copysign(-m / (m + 2.0), v)
    return t if v == v else v


@register_jitable(inline="always")
def _exp_of(u):
    """exp(u) = 2^k exp(r) with u = k ln 2 + r, |r| <= ln 2 / 2; 2^k as two factors, so
    that each is a normal number from the largest finite result down to the subnormal."""
    k, r = _reduced(min(max(u, EXP_UNDERFLOW), EXP_OVERFLOW))     # beyond, selected away
    half = math.floor(0.5 * k)
    e = (1.0 + _expm1_reduced(r)) * _power_of_two(half) * _power_of_two(k - half)
    e = math.inf if u > EXP_OVERFLOW else e
    e = 0.0 if u < EXP_UNDERFLOW else e
    return e if u == u else u


@register_jitable(inline="always")
def _reduced(u):
    """(k, r) with u = k ln 2 + r, k an integral float and |r| <= ln 2 / 2."""
    k = math.floor(u * LOG2_E + 0.5)
    return k, (u - k * LN2_HIGH) - k * LN2_LOW


@register_jitable(inline="always")
def _expm1_reduced(r):
    """exp(r) - 1 for |r| <= ln 2 / 2, by its Taylor series to r^13 (error below 1e-17)."""
    p = 0.0
    for c in literal_unroll(EXPM1_TAYLOR):      # unrolled: a loop would not vectorise
        p = p * r + c
    return r + r * r * p


@register_jitable(inline="always")
def _log_of(x):
    """log(x) = e ln 2 + log(1 + f) with x = 2^e (1 + f), sqrt(1/2) <= 1 + f < sqrt(2);
    log(1 + f) = 2 atanh(s) = 2s + s z T(z), s = f / (2 + f), z = s^2, |s| <= 0.172, by
    atanh's series to s^23 (error below 1e-18), written f - s (f - z T) so that f, which is
    exact, leads. A subnormal x is scaled by 2^54 first."""
    tiny = x < SMALLEST_NORMAL
    bits = _bits_of_float(x * TWO_TO_54 if tiny else x)
    e = ((bits >> 52) & 0x7ff) - (1023 + 54 if tiny else 1023)
    m = _float_from_bits((bits & MANTISSA_BITS) | ONE_BITS)          # in [1, 2)
    high = m > SQRT_2
    m = 0.5 * m if high else m
    e = e + 1 if high else e
    f = m - 1.0                                                      # exact
    s = f / (2.0 + f)
    z = s * s
    t = 0.0
    for c in literal_unroll(ATANH_SERIES):
        t = t * z + c
    k = float(e)
    r = k * LN2_HIGH + (k * LN2_LOW + (f - s * (f - z * t)))     # 2s = f - s f
    r = -math.inf if x == 0.0 else r
    r = math.nan if x < 0.0 else r
    return x if x == math.inf or x != x else r


@register_jitable(inline="always")
def _power_of_two(k):
    """2.0 ** k for an integral float k in the normal exponents, from its bits."""
    return _float_from_bits((int(k) + 1023) << 52)


@intrinsic
def _bits_of_float(typingctx, value):
    """The IEEE bits of the float64 `value`, as an int64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 `bits`."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen
