"""Gradient checking against central finite differences."""
import numpy as np

from .api import Gradient
from .errors import SrcdiffError


class GradientCheckError(SrcdiffError, AssertionError):
    """srcdiff's gradient and finite differences disagree."""


def numeric_gradient(fn, args, position, eps):
    """Central differences D(eps) of scalar `fn(*args)` w.r.t. argument `position`, each over
    the step the argument's dtype can hold (x + eps rounded to float32 is not x + eps)."""
    x = args[position]
    base = np.array(x, dtype=np.float64)
    dtype = x.dtype if isinstance(x, (np.ndarray, np.generic)) else np.float64
    out = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        values, points = [], []
        for sign in (1, -1):
            shifted = base.copy()
            shifted[i] += sign * eps
            shifted = shifted.astype(dtype)
            points.append(float(shifted[i]))
            call_args = list(args)
            call_args[position] = shifted if np.ndim(x) else _scalar_like(x, shifted[()])
            values.append(float(fn(*call_args)))
        out[i] = (values[0] - values[1]) / (points[0] - points[1])
    return out if np.ndim(x) else float(out[()])


def extrapolated(fn, args, position, eps, coarse):
    """Richardson's (4 D(eps / 2) - D(eps)) / 3 from `coarse` = D(eps): its truncation error is
    of order eps^4, not eps^2 (a float32 step is coarse next to a small entry), its rounding
    error larger."""
    return (4.0 * numeric_gradient(fn, args, position, eps / 2) - coarse) / 3.0


def _scalar_like(x, value):
    """`value` as a number of x's type (a Python float for a float, np.float32 for one)."""
    return type(x)(value) if isinstance(x, (float, np.generic)) else value


def check_grad(fn, *args, wrt=0, eps=None, rtol=None, atol=None, compile=True, **kwargs):
    """Compare srcdiff's gradient of `fn` with central differences; raise with a report if they differ.

    Arguments are passed as to `fn` (positions or names). Returns the largest absolute error
    found. `fn` may be a plain function or a `grad` object. By default the step and the
    tolerances follow the precision: float64 steps of 1e-6 within rtol 1e-5, atol 1e-7 plus
    4 eps |f| / step (the rounding of f over the step: 9e-10 |f|); float32 steps of 1e-3 (or,
    where closer, the Richardson extrapolation with 5e-4, whose truncation error is far
    smaller next to a small entry, while its rounding error is larger) within rtol 1e-3, atol
    1e-3 * max(1, |f|), for a float32 argument or a function whose value is float32.
    """
    plain = fn.fn if isinstance(fn, Gradient) else fn
    gradient = Gradient(plain, wrt, compile)
    options = {"eps": eps is not None, "rtol": rtol is not None, "atol": atol is not None,
               "compile": compile is not True}
    clash = [k for k, given in options.items() if given and k in gradient.params]
    if clash:      # check_grad takes it as its own option, and `fn` would run with its default
        raise SrcdiffError(f"`{plain.__name__}` has a parameter `{clash[0]}`, which is also an "
                           "option of check_grad", hint=f"pass `{clash[0]}` to {plain.__name__} "
                           "by position")
    args = gradient._bind(args, kwargs)
    got = gradient(*args)
    got = (got,) if gradient.single else got
    worst = 0.0
    report = []
    value = plain(*args)
    in_float32 = np.asarray(value).dtype == np.float32    # computed in float32
    for position, g in zip(gradient.wrt, got):
        single = in_float32 or np.asarray(args[position]).dtype == np.float32
        step = eps or (1e-3 if single else 1e-6)
        expected = numeric_gradient(plain, args, position, step)
        if np.shape(g) != np.shape(expected):
            report.append(f"  d{gradient.params[position]}: srcdiff's has shape {np.shape(g)}, "
                          f"the argument's is {np.shape(expected)}")
            continue
        if single and eps is None:     # float32: where closer, the extrapolated differences
            refined = extrapolated(plain, args, position, step, expected)
            mine = np.asarray(g, dtype=np.float64)
            expected = np.where(np.abs(mine - refined) < np.abs(mine - expected), refined, expected)
        error = np.abs(np.asarray(g, dtype=np.float64) - expected)
        allowed = _atol(atol, single, value, step) + _rtol(rtol, single) * np.abs(expected)
        worst = max(worst, float(np.max(error)) if error.size else 0.0)
        if np.any(~(error <= allowed)):
            report.append(_report(gradient.params[position], g, expected, error, allowed))
    if report:
        raise GradientCheckError("gradient check failed for `" + plain.__name__ + "`:\n" + "\n".join(report))
    return worst


def _rtol(rtol, single):
    if rtol is not None:
        return rtol
    return 1e-3 if single else 1e-5


def _atol(atol, single, value, step):
    if atol is not None:
        return atol
    size = abs(float(value))
    return 1e-3 * max(1.0, size) if single else 1e-7 + 4 * np.finfo(np.float64).eps * size / step


def _report(name, got, expected, error, allowed, count=5):
    got, expected, error = np.atleast_1d(got), np.atleast_1d(expected), np.atleast_1d(error)
    excess = (error - np.atleast_1d(allowed)).ravel()
    order = np.argsort(-excess)[:count]
    lines = [f"  d{name}: {int(np.sum(excess > 0))} of {excess.size} entries differ; worst:"]
    for flat in order:
        index = np.unravel_index(flat, expected.shape)
        lines.append(f"    {name}{[int(i) for i in index]}: srcdiff {got[index]:.8g}, "
                     f"finite differences {expected[index]:.8g}, |diff| {error[index]:.3g}")
    return "\n".join(lines)
