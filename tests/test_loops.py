"""Loops and branches in srcdiff: structured `for`/`while`/`if`, in-place writes, the tape.

Every differentiable case is checked against central finite differences of the plain
Python function in BOTH modes (numba-compiled and `compile=False`), and the two modes
must agree to ~1e-10.  The functions under test are defined at module level below
(srcdiff reads their source); their names do not start with `test_`.
"""
import ast
import inspect
import math
import os
import re
import resource
import textwrap

import numpy as np
import pytest

import srcdiff
from conftest import assert_grad_matches_fd
from srcdiff.commute import run_forwards

HERE = os.path.basename(__file__)


# =====================================================================================
# Helpers
# =====================================================================================

def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a


def _positions(fn, wrt):
    params = list(inspect.signature(fn).parameters)
    items = list(wrt) if isinstance(wrt, (tuple, list)) else [wrt]
    return [params.index(w) if isinstance(w, str) else w for w in items]


def finite_differences(fn, args, position, eps=1e-6):
    """Central differences of scalar fn(*args) w.r.t. args[position]; args are never mutated."""
    def value(shifted):
        call = [_copy(a) for a in args]
        call[position] = shifted
        return float(fn(*call))

    x = args[position]
    if np.ndim(x) == 0:
        return (value(float(x) + eps) - value(float(x) - eps)) / (2 * eps)
    base = np.array(x, dtype=np.float64)
    out = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        plus, minus = base.copy(), base.copy()
        plus[i] += eps
        minus[i] -= eps
        out[i] = (value(plus) - value(minus)) / (2 * eps)
    return out


def srcdiff_gradients(fn, args, wrt, compile):
    """The gradients srcdiff returns, always as a tuple, plus the Gradient object."""
    g = srcdiff.grad(fn, wrt=wrt, compile=compile)
    got = g(*args)
    single = not isinstance(wrt, (tuple, list))
    return ((got,) if single else tuple(got)), g


def check_loop(fn, *args, wrt=0, rtol=1e-6, atol=1e-7, eps=1e-6, expected=None,
               allow_mutation=False):
    """srcdiff's gradient of `fn` at `args`, compiled and not, vs finite differences.

    Also: the two modes agree to ~1e-10, the gradient does not modify the caller's arrays
    (unless `allow_mutation`), and (uncompiled) `forward` reproduces the function's value.
    Every call gets fresh copies of the arguments.  All problems found are collected and
    reported together.  Returns the compiled gradients (a tuple).
    """
    positions = _positions(fn, wrt)
    if expected is None:
        expected = [finite_differences(fn, args, p, eps) for p in positions]
    problems, results = [], {}
    for compile in (True, False):
        mode = "compiled" if compile else "compile=False"
        call = [_copy(a) for a in args]
        try:
            got, g = srcdiff_gradients(fn, call, wrt, compile)
        except Exception as error:  # noqa: BLE001 - report every failure mode
            problems.append(f"[{mode}] raised {type(error).__name__}: {error}")
            continue
        for p, (a, b) in enumerate(zip(call, args)):
            if not allow_mutation and isinstance(a, np.ndarray) and not np.array_equal(a, b):
                problems.append(f"[{mode}] the gradient call modified argument {p}")
        if len(got) != len(positions):
            problems.append(f"[{mode}] returned {len(got)} gradients, expected {len(positions)}")
            continue
        results[compile] = got
        for p, gp, ep in zip(positions, got, expected):
            gp = np.asarray(gp, dtype=np.float64)
            if gp.shape != np.shape(ep):
                problems.append(f"[{mode}] d(arg {p}): shape {gp.shape}, expected {np.shape(ep)}")
                continue
            scale = max(1.0, float(np.max(np.abs(ep))) if np.size(ep) else 1.0)
            if not np.allclose(gp, ep, rtol=rtol, atol=atol * scale):
                problems.append(f"[{mode}] d(arg {p}) wrong:\n  srcdiff: {np.array2string(gp, precision=8)}"
                                f"\n  expected: {np.array2string(np.asarray(ep), precision=8)}")
        if not compile:
            value = g.forward(*[_copy(a) for a in args])
            ref = fn(*[_copy(a) for a in args])
            if not np.isclose(float(value), float(ref), rtol=1e-12, atol=1e-12):
                problems.append(f"[{mode}] forward gave {value!r}, the function gives {ref!r}")
    if len(results) == 2:
        for p, gc, gp in zip(positions, results[True], results[False]):
            gc, gp = np.asarray(gc, dtype=np.float64), np.asarray(gp, dtype=np.float64)
            scale = max(1.0, float(np.max(np.abs(gp))) if gp.size else 1.0)
            if gc.shape != gp.shape or not np.allclose(gc, gp, rtol=1e-10, atol=1e-12 * scale):
                problems.append(f"compiled and compile=False disagree on d(arg {p}):\n  {gc}\n  {gp}")
    if problems:
        pytest.fail(f"{fn.__name__}{tuple(np.shape(a) if np.ndim(a) else a for a in args)}:\n"
                    + "\n".join(problems), pytrace=False)
    return results[True]


def line_of(fn, text):
    """The absolute line number of the first line of `fn` that starts with `text`."""
    lines, first = inspect.getsourcelines(fn)
    for k, line in enumerate(lines):
        if line.strip().startswith(text):
            return first + k
    raise AssertionError(f"{text!r} not in {fn.__name__}")


def rng(seed):
    return np.random.default_rng(seed)


# =====================================================================================
# 1. for over range(...)
# =====================================================================================

def range_stop(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += np.sin(x[i]) * x[i]
    return s


def range_start_stop(x):
    n = x.shape[0]
    s = 0.0
    for i in range(2, n - 1):
        s += x[i] * x[i - 1] - np.cos(x[i + 1])
    return s


def range_positive_step(x):
    n = x.shape[0]
    s = 1.0
    for i in range(1, n, 3):
        s = s * np.tanh(x[i]) + x[i - 1] * x[i - 1]
    return s


def range_negative_step(x):
    n = x.shape[0]
    s = 0.5
    for i in range(n - 1, 0, -2):
        s = np.sin(s) * x[i] + x[i - 1]
    return s


def range_negative_step_to_zero(x):
    s = 0.25
    for i in range(x.shape[0] - 1, -1, -3):
        s = s * s * 0.5 + x[i] * np.exp(0.1 * x[i])
    return s


def range_reversed_unit(x):
    s = 0.0
    for i in range(x.shape[0] - 1, -1, -1):
        s = np.cos(s) + x[i] * (i + 1)
    return s


def range_int_bounds(x, a, b):
    s = 0.0
    for i in range(a, b):
        s += x[i] ** 2 * (i + 1)
    return s


def triangular(x):
    n = x.shape[0]
    s = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            d = x[i] - x[j]
            s += np.exp(-d * d) * (j - i)
    return s


def triangular_reverse_inner(x):
    n = x.shape[0]
    s = 0.0
    for i in range(n):
        for j in range(i, -1, -1):
            s = s * 0.9 + x[j] * np.sin(x[i])
    return s


def nested_rectangular(A, w):
    m = A.shape[0]
    k = A.shape[1]
    s = 0.0
    for i in range(m):
        r = 0.0
        for j in range(k):
            r += A[i, j] * w[j]
        s += np.tanh(r) * (i + 1)
    return s


def nested_three_deep(x):
    s = 0.0
    for a in range(2):
        for b in range(3):
            for c in range(b, 4):
                s += np.sin(x[a * 4 + c] * (b + 1)) * x[a + b]
    return s


def index_arithmetic(x):
    n = x.shape[0]
    s = 0.0
    for i in range(n):
        s += x[i] * i
        s += x[i] * x[n - 1 - i] * (i % 3)
        s += np.sin(x[(i + 2) % n]) * (i * i) / n
    return s


# =====================================================================================
# 2. while loops with data-dependent trip counts
# =====================================================================================

def while_float_time(y0, k, T):
    t = 0.0
    dt = 0.013
    y = y0
    while t < T:
        y = y + dt * (-k * y * y + np.sin(t))
        t += dt
    return y


def while_array_state(x0, w, T):
    x = x0.copy()
    t = 0.0
    while t < T:
        x = x + 0.05 * np.cos(x * w)
        t = t + 0.05
    return np.sum(x * x)


def while_threshold(a, x0):
    v = x0
    while v < 10.0:
        v = v * a + 0.1
    return v * v


def while_counter_index(x):
    i = 0
    s = 0.0
    while i < x.shape[0]:
        s = s * 0.7 + np.sin(x[i]) * x[i]
        i += 1
    return s


def while_until_sum(x):
    s = 0.0
    i = 0
    while s < 3.0:
        s += x[i % x.shape[0]] ** 2
        i += 1
    return s * i


def while_in_for(x, tol):
    s = 0.0
    for i in range(x.shape[0]):
        v = x[i]
        while v < tol:
            v = v * 1.5 + 0.01
        s += v * (i + 1)
    return s


def for_in_while(x):
    s = 0.0
    rounds = 0
    while s < 5.0:
        for i in range(x.shape[0]):
            s = s + 0.3 * np.exp(-x[i] * s) * x[i]
        rounds += 1
    return s * s + rounds


def while_in_while(x):
    s = 0.0
    j = 0
    while j < x.shape[0]:
        v = x[j]
        while v < 3.0:
            v = v * 1.7 + 0.05
        s = s + v * x[j]
        j += 1
    return s


def while_condition_on_array(x):
    y = x.copy()
    while np.sum(y * y) < 10.0:
        y = y * 1.3 + 0.1
    return np.sum(y)


# =====================================================================================
# 3. if / elif / else, ternaries, builtin min / max / abs
# =====================================================================================

def top_level_if(x):
    if x > 1.0:
        y = x ** 3
    elif x > 0.0:
        y = np.sin(x) * x
    else:
        y = -x * np.exp(x)
    return y * 2.0 + x


def top_level_if_arrays(x, w):
    s = np.sum(x * w)
    if s > 0.0:
        y = np.tanh(x) * s
    else:
        y = x * x
    return np.sum(y)


def if_in_loop(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0.0:
            s += x[i] * x[i] * w[i]
        elif x[i] > -0.5:
            s -= np.sin(x[i]) * w[i]
        else:
            s = s * 0.9 + w[i] * x[i]
    return s


def if_on_index(x):
    s = 0.0
    for i in range(x.shape[0]):
        if i % 2 == 0:
            s = s + np.exp(0.1 * x[i])
        else:
            s = s * x[i]
    return s


def if_on_carried_value(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > s:
            t = x[i] - s
        else:
            t = (s - x[i]) * 0.5
        s = s + t * t
    return s


def if_without_else_nested(x, w):
    s = 1.0
    for i in range(x.shape[0]):
        if x[i] > 0.0 and i > 1:
            s = s * (1.0 + 0.1 * x[i])
            if w[i] > 0.5:
                s += w[i] * x[i]
        if x[i] < -1.0 or i == 0:
            s -= np.sin(x[i] * w[i])
    return s


def ternary_in_loop(x):
    s = 0.0
    for i in range(x.shape[0]):
        v = x[i] if x[i] > 0.0 else 0.1 * x[i]
        s += v * v * (1.0 if i % 2 == 0 else -0.5)
    return s


def ternary_top_level(a, b):
    y = a * b if a > b else a - b * b
    return y * a


def builtin_min_max_abs(x, y):
    s = 0.0
    for i in range(x.shape[0]):
        s += max(x[i], y[i]) * min(x[i], 0.5) + abs(x[i] - y[i])
        s = min(s, 4.0) + 0.1 * abs(s)
    return s


def branch_store(x):
    n = x.shape[0]
    y = np.zeros(n)
    for i in range(n):
        if x[i] > 0.0:
            y[i] = x[i] * 2.0
        else:
            y[i] = np.exp(x[i])
        if i > 0:
            if y[i - 1] > y[i]:
                y[i] = y[i] + 0.5 * y[i - 1]
    return np.sum(y * y)


def taped_arrays_in_branches(x, W):
    h = x.copy()
    for t in range(4):
        if t % 2 == 0:
            h = np.tanh(W @ h)
        else:
            h = np.sin(h) + h * 0.5
    return np.sum(h * h)


# =====================================================================================
# 4. augmented assignment, in-place writes, overwritten values, loop-carried arrays
# =====================================================================================

def aug_scalars(x):
    a = 1.0
    b = 0.0
    c = 2.0
    d = 3.0
    for i in range(x.shape[0]):
        a *= 1.0 + 0.1 * x[i]
        b -= x[i] * a
        c += np.sin(b)
        d /= 1.5 + x[i] * x[i]
    return a + b * c + d


def aug_elements(x):
    n = x.shape[0]
    y = np.ones(n)
    z = np.zeros(n)
    for i in range(n):
        y[i] *= x[i]
        y[i] += x[(i + 1) % n] ** 2
        z[i] -= y[i] * 0.5
        z[i] /= 1.0 + x[i] * x[i]
        y[(i + 2) % n] -= 0.1 * z[i]
    return np.sum(y * z) + np.sum(y)


def slice_writes(X, w):
    m = X.shape[0]
    k = X.shape[1]
    Y = np.empty((m, k))
    for j in range(k):
        Y[:, j] = X[:, j] * w[j]
    Z = np.zeros_like(Y)
    Z[0, :] = np.tanh(Y[0, :])
    for i in range(1, m):
        Z[i, :] = np.tanh(Y[i, :]) + 0.5 * Z[i - 1, :]
    return np.sum(Z * Z)


def slice_aug_writes(X, w):
    m = X.shape[0]
    k = X.shape[1]
    acc = np.ones((m, k))
    for j in range(k):
        acc[:, j] += X[:, j] * w[j]
        acc[:, j] -= np.sin(X[:, j])
        acc[1:3, j] *= w[j]
    return np.sum(acc * acc)


def creations(x):
    n = x.shape[0]
    a = np.ones(n)
    b = np.empty(n)
    c = np.zeros_like(x)
    d = x.copy()
    e = np.ones_like(x)
    f = np.copy(x)
    for i in range(n):
        a[i] = a[i] + x[i]
        b[i] = np.sin(d[i]) * a[i]
        c[i] = b[i] * d[i]
        d[i] = d[i] * 2.0
        e[i] = e[i] * f[i] + c[i]
        f[i] = 0.0
    return np.sum(a * b) + np.sum(c) + np.sum(d * d) + np.sum(e * e) + np.sum(f)


def running_state(a, b):
    s = np.zeros(1)
    s[0] = 1.0
    for i in range(a.shape[0]):
        s[0] = s[0] * a[i] + b[i]
    return s[0] * s[0]


def rotation_state(a, w):
    s = np.zeros(2)
    s[0] = 1.0
    for i in range(a.shape[0]):
        u = s[0]
        s[0] = s[0] * np.cos(a[i]) - s[1] * np.sin(a[i])
        s[1] = u * np.sin(a[i]) + s[1] * np.cos(a[i])
    return s[0] * w[0] + s[1] * w[1] + s[0] * s[1]


def scalar_overwrite(x0, w):
    x = x0
    for i in range(w.shape[0]):
        x = np.sin(x) * w[i]
    return x


def argument_overwrite(x0, w):
    for i in range(w.shape[0]):
        x0 = np.sin(x0) * w[i] + 0.1
    return x0 * x0


def product_loop(x):
    s = 1.0
    for i in range(x.shape[0]):
        s *= x[i]
    return s


def product_loop_in_branch(x):
    s = 1.0
    for i in range(x.shape[0]):
        if x[i] > 0.0:
            s = s * x[i]
    return s


def self_update_unary(x):
    s = 0.3
    for i in range(x.shape[0]):
        s = np.sin(s)
        s += x[i]
    return s


def self_update_pow(x):
    s = 0.9
    for i in range(x.shape[0]):
        s = s ** x[i]
    return s


def self_update_array_mul(x, w):
    h = np.ones(w.shape[0])
    for i in range(x.shape[0]):
        h = h * np.cos(x[i] * w)
    return np.sum(h)


def self_update_matmul(W, h0):
    h = h0.copy()
    for i in range(3):
        h = W @ h
    return np.sum(h * h)


def rnn(W, b, h0, steps):
    h = h0
    for t in range(steps):
        h = np.tanh(W @ h + b)
    return np.sum(h * h)


def rnn_inputs(W, U, b, xs, h0):
    h = h0.copy()
    loss = 0.0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t] + b)
        loss += np.sum(h) * (t + 1) * 0.1
    return loss + np.sum(h * h)


def accumulators(X, v):
    m = X.shape[0]
    acc = np.zeros(X.shape[1])
    tot = 0.0
    for i in range(m):
        acc += X[i] * v[i]
        tot += np.sum(acc * acc)
    return tot + np.sum(np.sin(acc))


def matrix_carried(M0, A, steps):
    M = M0.copy()
    for t in range(steps):
        M = np.tanh(M @ A) + 0.1 * M0
    return np.sum(M * M)


def bound_reassigned_in_loop(x):
    m = x.shape[0]
    s = 0.0
    for i in range(m):
        s += x[i] * x[i] * m
        m = m - 1
    return s + m


def index_used_after_loop(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s += np.sin(x[i])
    return s * x[i] + x[i + 1]


def condition_modified_in_branch(x):
    s = 0.5
    for i in range(x.shape[0]):
        if s > 1.0:
            s = s - 0.5 * x[i] * x[i]
        else:
            s = s + np.sin(x[i])
    return s


def writes_other_argument(x, buf):
    for i in range(x.shape[0]):
        buf[i] = x[i] * x[i]
    return np.sum(buf * x)


def nested_loops_both_taped(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        u = np.sin(s)
        for j in range(w.shape[0]):
            s = np.cos(s) * w[j] + u * x[i]
    return s


def integer_initial_accumulator(x):
    s = 0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return s


def last_iteration_value_after_loop(x):
    for i in range(x.shape[0]):
        t = np.sin(x[i]) * 2.0
    return t * x[0]


def inplace_sweeps(x, sweeps):
    y = x.copy()
    n = y.shape[0]
    for s in range(sweeps):
        for i in range(1, n - 1):
            y[i] = 0.25 * y[i - 1] + 0.5 * y[i] + 0.25 * y[i + 1] + 0.1 * np.sin(y[i])
    return np.sum(y ** 3)


def prefix_product(x):
    n = x.shape[0]
    y = np.empty(n)
    y[0] = x[0]
    for i in range(1, n):
        y[i] = y[i - 1] * np.cos(x[i]) + x[i]
    return np.sum(y * y)


def loop_matmul(A, B):
    m = A.shape[0]
    k = A.shape[1]
    p = B.shape[1]
    C = np.empty((m, p))
    for i in range(m):
        for j in range(p):
            acc = 0.0
            for q in range(k):
                acc += A[i, q] * B[q, j]
            C[i, j] = acc
    return np.sum(C * C)


# =====================================================================================
# 5. the two issue examples
# =====================================================================================

def lj_energy(pos):
    n = pos.shape[0]
    e = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = pos[i, 0] - pos[j, 0]
            dy = pos[i, 1] - pos[j, 1]
            dz = pos[i, 2] - pos[j, 2]
            r2 = dx * dx + dy * dy + dz * dz
            s6 = 1.0 / (r2 * r2 * r2)
            e += 4.0 * (s6 * s6 - s6)
    return e


def final_energy(theta0, k, steps):
    n = theta0.shape[0]
    th = theta0.copy()
    om = np.zeros(n)
    for t in range(steps):
        for i in range(n):
            om[i] = om[i] + 0.01 * (-np.sin(th[i]) * (1.0 + k[i]) - 0.1 * om[i])
            th[i] = th[i] + 0.01 * om[i]
    return np.sum(0.5 * om * om + (1.0 - np.cos(th)))


def lj_forces_by_hand(pos):
    """-dE/dpos for lj_energy, derived by hand: dE/dr2 = (12 s6 - 24 s6^2) / r2."""
    n = pos.shape[0]
    grad = np.zeros_like(pos)
    for i in range(n):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            r2 = float(d @ d)
            s6 = 1.0 / r2 ** 3
            de_dr2 = (12.0 * s6 - 24.0 * s6 * s6) / r2
            grad[i] += de_dr2 * 2.0 * d
            grad[j] -= de_dr2 * 2.0 * d
    return -grad


def pendulum_gradient_by_hand(theta0, k, steps):
    """(dE/dtheta0, dE/dk) for final_energy: store the trajectory, run the adjoint backwards."""
    h, damping = 0.01, 0.1
    th, om = theta0.astype(float).copy(), np.zeros_like(theta0, dtype=float)
    trajectory = []
    for _ in range(steps):
        trajectory.append(th.copy())
        om = om + h * (-np.sin(th) * (1.0 + k) - damping * om)
        th = th + h * om
    a_th, a_om, a_k = np.sin(th), om.copy(), np.zeros_like(k, dtype=float)
    for th_before in reversed(trajectory):
        # th_after = th_before + h * om_after
        a_om = a_om + h * a_th
        # om_after = (1 - h * damping) * om_before - h * sin(th_before) * (1 + k)
        a_k = a_k - h * np.sin(th_before) * a_om
        a_th = a_th - h * np.cos(th_before) * (1.0 + k) * a_om
        a_om = (1.0 - h * damping) * a_om
    return a_th, a_k


def jittered_lattice(side, seed):
    g = np.arange(side) * 1.2
    pos = np.array([[a, b, c] for a in g for b in g for c in g], dtype=float)
    return pos + rng(seed).uniform(-0.05, 0.05, pos.shape)


# =====================================================================================
# 6. long loops
# =====================================================================================

def long_sin_sum(x, n):
    m = x.shape[0]
    s = 0.0
    for i in range(n):
        s += np.sin(x[i % m] * i * 1e-6)
    return s


def long_recurrence(x, n):
    m = x.shape[0]
    s = 0.0
    for i in range(n):
        s = 0.999 * np.sin(s) + x[i % m] * 1e-3
    return s


def long_recurrence_by_hand(x, n):
    """(value, gradient) of long_recurrence; the forward stores s, the adjoint runs backwards."""
    xs = [float(v) * 1e-3 for v in x]
    m = len(xs)
    before = [0.0] * n
    s = 0.0
    for i in range(n):
        before[i] = s
        s = 0.999 * math.sin(s) + xs[i % m]
    g = [0.0] * m
    a = 1.0
    for i in range(n - 1, -1, -1):
        g[i % m] += a * 1e-3
        a = a * 0.999 * math.cos(before[i])
    return s, np.array(g)


# =====================================================================================
# 7. loops stay loops
# =====================================================================================

def counted_recurrence(x, n):
    s = 0.0
    for i in range(n):
        s = np.sin(s) + x[i % x.shape[0]] * 0.5
    return s


# =====================================================================================
# 8. break / continue, and unsupported loop forms
# =====================================================================================

def uses_break(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 2.0:
            break
        s += x[i]
    return s


def uses_continue(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] < 0.0:
            continue
        s += x[i] * x[i]
    return s


def uses_break_in_while(x):
    s = 0.0
    i = 0
    while i < 10:
        s += x[i]
        if s > 1.0:
            break
        i += 1
    return s


def iterates_tuple_literal(x):
    s = 0.0
    for v in (0.5, 1.5):
        s += v * x[0]
    return s


def for_else(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    else:
        s = s * 2.0
    return s


def for_else_with_return(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
        if s > 1.0:
            return s
    else:
        s = s * 2.0
    return s


# =====================================================================================
# 9. writes into arguments
# =====================================================================================

def writes_wrt_argument(x):
    for i in range(x.shape[0]):
        x[i] = x[i] * x[i] + 1.0
    return np.sum(x * x)


def writes_wrt_argument_after_read(x, w):
    s = np.sum(x * w)
    for i in range(x.shape[0]):
        x[i] = np.sin(x[i]) * s
    return np.sum(x) + s


# =====================================================================================
# Tests: 1. ranges
# =====================================================================================

def test_range_stop():
    x = rng(1).normal(size=7)
    check_loop(range_stop, x)
    for compile in (True, False):
        assert srcdiff.check_grad(range_stop, x, compile=compile) < 1e-6


def test_range_start_stop():
    check_loop(range_start_stop, rng(2).normal(size=8))


@pytest.mark.parametrize("n", [11, 12, 13])
def test_range_positive_step(n):
    # stop on the grid (n=13: i = 1, 4, 7, 10), and past it
    check_loop(range_positive_step, rng(3).normal(size=n))


@pytest.mark.parametrize("n", [8, 9])
def test_range_negative_step(n):
    check_loop(range_negative_step, rng(4).normal(size=n) * 0.8)


@pytest.mark.parametrize("n", [7, 9, 10])
def test_range_negative_step_to_zero(n):
    check_loop(range_negative_step_to_zero, rng(5).normal(size=n) * 0.5)


def test_range_reversed_unit_step():
    check_loop(range_reversed_unit, rng(6).normal(size=6))


def test_range_int_argument_bounds():
    x = rng(7).normal(size=9)
    check_loop(range_int_bounds, x, 2, 7)
    check_loop(range_int_bounds, x, 0, 9)


def test_range_empty_gives_zero_gradient():
    x = rng(8).normal(size=9)
    for compile in (True, False):
        g = srcdiff.grad(range_int_bounds, compile=compile)
        np.testing.assert_array_equal(g(x, 6, 2), np.zeros(9))
        np.testing.assert_array_equal(g(x, 4, 4), np.zeros(9))


@pytest.mark.parametrize("n", [1, 2, 6])
def test_triangular(n):
    check_loop(triangular, rng(9).normal(size=n))


def test_triangular_with_reversed_inner_loop():
    check_loop(triangular_reverse_inner, rng(10).normal(size=6) * 0.7)


def test_nested_rectangular():
    r = rng(11)
    check_loop(nested_rectangular, r.normal(size=(4, 3)), r.normal(size=3), wrt=("A", "w"))


def test_nested_three_deep():
    check_loop(nested_three_deep, rng(12).normal(size=8))


def test_loop_index_in_arithmetic():
    check_loop(index_arithmetic, rng(13).normal(size=7))


# =====================================================================================
# Tests: 2. while
# =====================================================================================

def test_while_float_time_counter():
    # 1.0 / 0.013 = 76.9: the trip count is far from a boundary
    check_loop(while_float_time, 0.3, 0.7, 1.0, wrt=("y0", "k"))
    check_loop(while_float_time, -0.2, 1.3, 0.5, wrt=("y0", "k"))


def test_while_array_state():
    r = rng(14)
    check_loop(while_array_state, r.normal(size=4), r.normal(size=4), 0.33, wrt=("x0", "w"))


@pytest.mark.parametrize("a, x0", [(1.3, 0.5), (2.1, 0.05), (1.05, 9.0)])
def test_while_threshold(a, x0):
    v, trips = x0, 0
    while v < 10.0:
        v, trips = v * a + 0.1, trips + 1
    assert v > 10.0 + 1e-3  # finite differences cannot change the trip count
    check_loop(while_threshold, a, x0, wrt=("a", "x0"))


def test_while_threshold_zero_trips():
    check_loop(while_threshold, 1.5, 11.0, wrt=("a", "x0"))


def test_while_integer_counter_indexing():
    check_loop(while_counter_index, rng(15).normal(size=6))


def test_while_until_sum():
    check_loop(while_until_sum, np.array([0.9, -0.7, 0.5, 1.1]))


def test_while_inside_for():
    check_loop(while_in_for, np.array([0.3, 1.7, 0.9, 3.2, 5.0]), 4.0)


def test_for_inside_while():
    check_loop(for_in_while, np.array([0.4, 0.9, 0.6]))


def test_while_inside_while():
    x = np.array([0.4, 1.1, 0.7, 2.9])
    check_loop(while_in_while, x)


def test_while_condition_on_active_array():
    check_loop(while_condition_on_array, np.array([0.4, 1.1, 0.7]))


# =====================================================================================
# Tests: 3. branches
# =====================================================================================

def test_top_level_if_elif_else():
    for compile in (True, False):
        g = srcdiff.grad(top_level_if, compile=compile)
        for x, expected in [(1.5, 6 * 1.5 ** 2 + 1),
                            (0.5, 2 * (np.cos(0.5) * 0.5 + np.sin(0.5)) + 1),
                            (-0.7, -2 * (np.exp(-0.7) - 0.7 * np.exp(-0.7)) + 1)]:
            assert g(x) == pytest.approx(expected, rel=1e-12), (compile, x)
    for x in (1.5, 0.5, -0.7):
        check_loop(top_level_if, x)


def test_top_level_if_on_arrays():
    r = rng(16)
    x, w = r.normal(size=5), r.normal(size=5)
    check_loop(top_level_if_arrays, x, w, wrt=("x", "w"))
    check_loop(top_level_if_arrays, x, -w, wrt=("x", "w"))


def test_if_elif_else_in_loop():
    x = np.array([0.8, -0.2, -1.3, 1.1, -0.4, -0.9, 0.3])
    check_loop(if_in_loop, x, rng(17).normal(size=7), wrt=("x", "w"))


def test_if_on_loop_index():
    check_loop(if_on_index, rng(18).normal(size=7))


def test_if_on_loop_carried_value():
    check_loop(if_on_carried_value, np.array([0.5, 0.2, 1.4, -0.3, 2.5, 0.1]))


def test_if_without_else_nested_and_or():
    x = np.array([-1.5, 0.4, 0.7, -0.3, 1.2, -2.0, 0.9])
    w = np.array([0.2, 0.9, 0.1, 0.7, 0.8, 0.3, 0.6])
    check_loop(if_without_else_nested, x, w, wrt=("x", "w"))


def test_ternary_in_loop():
    check_loop(ternary_in_loop, np.array([0.5, -1.2, 0.3, -0.4, 2.0, 0.7]))


def test_ternary_top_level():
    check_loop(ternary_top_level, 1.5, 0.4, wrt=(0, 1))
    check_loop(ternary_top_level, 0.3, 0.9, wrt=(0, 1))


def test_taped_arrays_in_branches():
    r = rng(44)
    check_loop(taped_arrays_in_branches, r.normal(size=3), r.normal(size=(3, 3)), wrt=("x", "W"))


def test_builtin_min_max_abs_in_loop():
    x = np.array([0.2, 0.9, -0.6, 1.4, 0.35])
    y = np.array([0.7, 0.1, -0.2, 1.0, -0.5])
    check_loop(builtin_min_max_abs, x, y, wrt=("x", "y"))
    check_loop(builtin_min_max_abs, x * 3.0, y * 3.0, wrt=("x", "y"))   # s hits the cap of 4


def test_branches_writing_array_elements():
    check_loop(branch_store, np.array([0.4, -0.3, 1.1, -2.0, 0.2, 0.9]))


# =====================================================================================
# Tests: 4. augmented assignment, array writes, overwrites
# =====================================================================================

def test_augmented_assignment_scalars():
    check_loop(aug_scalars, rng(19).normal(size=6))


def test_augmented_assignment_elements():
    check_loop(aug_elements, rng(20).normal(size=5))


def test_slice_writes():
    r = rng(21)
    check_loop(slice_writes, r.normal(size=(4, 3)), r.normal(size=3), wrt=("X", "w"))


def test_slice_augmented_writes():
    r = rng(22)
    check_loop(slice_aug_writes, r.normal(size=(4, 3)), r.normal(size=3), wrt=("X", "w"))


def test_array_creations_and_copies():
    check_loop(creations, rng(23).normal(size=5))


def test_running_state_element():
    r = rng(24)
    a, b = r.uniform(0.5, 1.2, 8), r.normal(size=8)
    check_loop(running_state, a, b, wrt=("a", "b"))


def test_running_state_by_hand():
    r = rng(25)
    a, b = r.uniform(0.5, 1.2, 6), r.normal(size=6)
    s = [1.0]
    for i in range(6):
        s.append(s[-1] * a[i] + b[i])
    da, db, adj = np.zeros(6), np.zeros(6), 2 * s[-1]
    for i in range(5, -1, -1):
        da[i], db[i] = adj * s[i], adj
        adj *= a[i]
    check_loop(running_state, a, b, wrt=("a", "b"), expected=[da, db])


def test_rotation_state_elements():
    r = rng(26)
    check_loop(rotation_state, r.normal(size=6), r.normal(size=2), wrt=("a", "w"))


def test_scalar_overwritten_nonlinearly():
    w = rng(27).uniform(0.5, 1.5, 9)
    check_loop(scalar_overwrite, 0.7, w, wrt=("x0", "w"))


def test_argument_overwritten_in_loop():
    w = rng(28).uniform(0.5, 1.5, 6)
    check_loop(argument_overwrite, 0.4, w, wrt=("x0", "w"))


def test_product_accumulator():
    x = np.array([0.5, 2.0, 3.0])
    check_loop(product_loop, x, expected=[np.array([6.0, 1.5, 1.0])])


def test_product_accumulator_in_branch():
    x = np.array([0.5, -1.0, 2.0, 3.0])
    check_loop(product_loop_in_branch, x, expected=[np.array([6.0, 0.0, 1.5, 1.0])])


def test_self_update_unary():
    check_loop(self_update_unary, rng(35).uniform(0.5, 1.5, 5))


def test_self_update_pow():
    check_loop(self_update_pow, rng(36).uniform(0.5, 1.5, 5))


def test_self_update_array_mul():
    r = rng(37)
    check_loop(self_update_array_mul, r.uniform(0.5, 1.5, 4), r.normal(size=3), wrt=("x", "w"))


def test_self_update_matmul():
    r = rng(38)
    W, h0 = r.normal(size=(3, 3)), r.normal(size=3)
    W3 = W @ W @ W
    h3 = W3 @ h0
    expected_dh0 = 2 * W3.T @ h3
    expected_dW = (2 * np.outer(h3, h0) @ (W @ W).T + W.T @ np.outer(2 * h3, h0) @ W.T
                   + (W @ W).T @ np.outer(2 * h3, h0))
    check_loop(self_update_matmul, W, h0, wrt=("W", "h0"), expected=[expected_dW, expected_dh0])


def test_scalar_overwrite_zero_trips():
    got = check_loop(scalar_overwrite, 0.7, np.zeros(0), wrt=("x0", "w"), expected=[1.0, np.zeros(0)])
    assert got[0] == 1.0


def test_matrix_carried_through_loop():
    r = rng(39)
    check_loop(matrix_carried, r.normal(size=(2, 3)) * 0.5, r.normal(size=(3, 3)) * 0.5, 3,
               wrt=("M0", "A"))


def test_range_bound_reassigned_in_loop():
    check_loop(bound_reassigned_in_loop, rng(41).normal(size=5))


def test_loop_index_used_after_loop():
    check_loop(index_used_after_loop, rng(42).normal(size=5))


def test_condition_variable_modified_in_branch():
    check_loop(condition_modified_in_branch, rng(43).uniform(0.2, 1.2, 6))


def test_rnn_loop_carried_array():
    r = rng(29)
    W, b, h0 = r.normal(size=(4, 4)) * 0.6, r.normal(size=4) * 0.3, r.normal(size=4)
    check_loop(rnn, W, b, h0, 5, wrt=("W", "b", "h0"))


def test_rnn_with_inputs():
    r = rng(30)
    W, U, b = r.normal(size=(3, 3)) * 0.5, r.normal(size=(3, 2)) * 0.5, r.normal(size=3) * 0.2
    xs, h0 = r.normal(size=(4, 2)), r.normal(size=3)
    check_loop(rnn_inputs, W, U, b, xs, h0, wrt=("W", "U", "b", "xs", "h0"))


def test_array_accumulators():
    r = rng(31)
    check_loop(accumulators, r.normal(size=(5, 3)), r.normal(size=5), wrt=("X", "v"))


def test_nested_loops_both_taped():
    r = rng(45)
    check_loop(nested_loops_both_taped, r.normal(size=3), r.normal(size=4), wrt=("x", "w"))


def test_integer_initial_accumulator():
    x = rng(46).normal(size=4)
    check_loop(integer_initial_accumulator, x, expected=[2 * x])


def test_value_of_last_iteration_used_after_loop():
    check_loop(last_iteration_value_after_loop, rng(47).normal(size=4))


def test_inplace_sweeps_old_values_needed():
    check_loop(inplace_sweeps, rng(32).normal(size=6), 3)


def test_prefix_recurrence_into_empty():
    check_loop(prefix_product, rng(33).normal(size=6))


def test_loop_matmul():
    r = rng(34)
    A, B = r.normal(size=(3, 4)), r.normal(size=(4, 2))
    check_loop(loop_matmul, A, B, wrt=("A", "B"))
    dA, dB = 2 * (A @ B) @ B.T, A.T @ (2 * (A @ B))
    check_loop(loop_matmul, A, B, wrt=("A", "B"), expected=[dA, dB])


# =====================================================================================
# Tests: 5. issue examples against hand-written gradients
# =====================================================================================

@pytest.mark.parametrize("side", [2, 3])
def test_lennard_jones_forces(side):
    pos = jittered_lattice(side, seed=side)
    assert pos.shape == (side ** 3, 3)
    forces = lj_forces_by_hand(pos)
    # the hand-written forces themselves against finite differences
    np.testing.assert_allclose(-finite_differences(lj_energy, (pos,), 0), forces, rtol=1e-6, atol=1e-6)
    results = {}
    for compile in (True, False):
        g = srcdiff.grad(lj_energy, compile=compile)
        results[compile] = g(pos)
        np.testing.assert_allclose(-results[compile], forces, rtol=1e-10, atol=1e-10,
                                   err_msg=f"compile={compile}")
        assert g.forward(pos) == pytest.approx(lj_energy(pos), rel=1e-12)
    np.testing.assert_allclose(results[True], results[False], rtol=1e-10, atol=1e-12)
    if side == 2:
        check_loop(lj_energy, pos, atol=1e-6)


@pytest.mark.parametrize("n, steps", [(3, 7), (5, 200)])
def test_pendulum_rollout(n, steps):
    r = rng(40 + n)
    theta0, k = r.uniform(-1.0, 1.0, n), r.uniform(0.0, 0.5, n)
    by_hand = pendulum_gradient_by_hand(theta0, k, steps)
    check_loop(final_energy, theta0, k, steps, wrt=("theta0", "k"), expected=list(by_hand),
               rtol=1e-10, atol=1e-12)
    if steps < 10:
        check_loop(final_energy, theta0, k, steps, wrt=("theta0", "k"))


# =====================================================================================
# Tests: 6. long loops
# =====================================================================================

def test_million_iterations_sin_sum():
    x, n = rng(50).normal(size=7), 10 ** 6
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    g = srcdiff.grad(long_sin_sum, compile=True)
    got = g(x, n)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    i = np.arange(n)
    expected = np.bincount(i % 7, weights=np.cos(x[i % 7] * i * 1e-6) * i * 1e-6, minlength=7)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert grown_mb < 400, f"peak memory grew by {grown_mb:.0f} MB"
    check_loop(long_sin_sum, x, 50)


def test_million_iterations_recurrence_with_tape():
    x, n = rng(51).normal(size=5), 10 ** 6
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    g = srcdiff.grad(long_recurrence, compile=True)
    got = g(x, n)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert "tape" in g.source     # the old s of every step is stored: 8 MB here
    value, expected = long_recurrence_by_hand(x, n)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert g.forward(x, n) == pytest.approx(value, rel=1e-12)
    assert grown_mb < 400, f"peak memory grew by {grown_mb:.0f} MB"
    np.testing.assert_array_equal(g(x, 0), np.zeros(5))      # a taped loop that never runs
    check_loop(long_recurrence, x, 40)


# =====================================================================================
# Tests: 7. loops stay loops
# =====================================================================================

def test_generated_source_is_not_unrolled():
    x = rng(52).normal(size=4)
    sources = {}
    for n in (3, 1000):
        g = srcdiff.grad(counted_recurrence, compile=False)
        g(x, n)
        sources[n] = g.source
    assert len(sources[3].splitlines()) == len(sources[1000].splitlines())
    backward = sources[1000].split("# backward", 1)[1]
    loops = [line for line in backward.splitlines() if line.strip().startswith("for ")]
    assert loops, backward
    assert any(line.rstrip().endswith("-1):") for line in loops), loops
    for y in (rng(53).normal(size=3), rng(54).normal(size=1000)):
        g = srcdiff.grad(range_stop, compile=False)
        g(y)
        sources[len(y)] = g.source
    assert len(sources[3].splitlines()) == len(sources[1000].splitlines())
    assert sources[3].count("\n") < 80
    backward = sources[1000].split("# backward", 1)[1]
    assert any(line.strip().startswith("for ") and line.rstrip().endswith("-1):")
               for line in backward.splitlines()), backward


# =====================================================================================
# Tests: 8. unsupported loop forms name the line
# =====================================================================================

@pytest.mark.parametrize("fn, x", [
    (uses_break, [0.5, 1.0, 2.5, 0.3]),
    (uses_break, [0.5, 1.0, 1.5, 0.3]),
    (uses_continue, [0.5, -1.0, 2.5, -0.3]),
    (uses_break_in_while, [0.3, 0.4, 0.5, 0.2, 0.1, 0.6, 0.7, 0.8, 0.9, 1.0]),
])
def test_break_and_continue(fn, x):
    check_loop(fn, np.array(x))


@pytest.mark.parametrize("fn, marker", [
    (iterates_tuple_literal, "for v in (0.5"),
    (for_else, "for i in range"),
    (for_else_with_return, "for i in range"),
])
def test_unsupported_loop_forms_raise_naming_the_line(fn, marker):
    line = line_of(fn, marker)
    x = np.array([0.5, 1.0, 2.5])
    for compile in (True, False):
        with pytest.raises(srcdiff.SrcdiffError) as info:
            srcdiff.grad(fn, compile=compile)(x)
        message = str(info.value)
        assert f"{HERE}:{line}:" in message, message


# =====================================================================================
# Tests: 9. writes into an argument that is differentiated
# =====================================================================================

@pytest.mark.parametrize("fn, wrt", [(writes_wrt_argument, 0), (writes_wrt_argument_after_read, ("x", "w"))])
def test_writes_into_wrt_argument(fn, wrt):
    """Either a SrcdiffError naming the write, or a correct gradient (which one happens is reported).

    The gradient is taken at the argument's value on entry; like the function itself, an
    accepted gradient may leave the caller's array modified.
    """
    r = rng(60)
    args = (r.normal(size=5),) if fn is writes_wrt_argument else (r.normal(size=5), r.normal(size=5))
    try:
        srcdiff.grad(fn, wrt=wrt, compile=False)(*[_copy(a) for a in args])
    except srcdiff.SrcdiffError as error:
        assert f"{HERE}:{line_of(fn, 'x[i] = ')}:" in str(error), str(error)
        with pytest.raises(srcdiff.SrcdiffError):
            srcdiff.grad(fn, wrt=wrt, compile=True)(*[_copy(a) for a in args])
        return
    check_loop(fn, *args, wrt=wrt, allow_mutation=True)


def test_writes_into_argument_not_differentiated():
    r = rng(61)
    check_loop(writes_other_argument, r.normal(size=5), np.zeros(5), allow_mutation=True)


# =====================================================================================
# Tests: 10. inner reverse loops that pop the tape run forward, reading it by position
# =====================================================================================

def row_log_sum_exp(x):
    buf = np.zeros(x.shape[1])
    total = 0.0
    for i in range(x.shape[0]):
        for k in range(x.shape[1]):
            buf[k] = x[i, k] * x[i, k]
        s = 0.0
        for k in range(x.shape[1]):
            s += np.exp(buf[k] - 1.0)
        total += np.log(s)
    return total


def row_two_saved(x):
    buf = np.zeros(x.shape[1])
    total = 0.0
    for i in range(x.shape[0]):
        for k in range(x.shape[1]):
            buf[k] = np.sin(x[i, k])
        s = 0.0
        for k in range(x.shape[1]):
            s += np.exp(buf[k]) * np.cos(buf[k] * x[i, 0])
        total += np.log(s * s + 1.0)
    return total


def row_from_offset(x):
    buf = np.zeros(x.shape[1])
    total = 0.0
    for i in range(x.shape[0]):
        for k in range(x.shape[1]):
            buf[k] = x[i, k] * x[i, k]
        s = 0.0
        for k in range(1, x.shape[1]):
            s += np.exp(buf[k] * buf[k - 1])
        total += np.log(s)
    return total


@pytest.mark.parametrize("fn", [row_log_sum_exp, row_two_saved, row_from_offset])
def test_inner_loop_popping_the_tape(fn):
    x = rng(70).normal(size=(4, 5))
    check_loop(fn, x)


def test_inner_loop_popping_scalars_runs_forward():
    text = srcdiff.grad(row_log_sum_exp).source_for(np.ones((2, 3))).split("def gradient")[1]
    # the popping loop counts up over the forward range, reading its entries by position
    assert re.search(r"top -= len\(range\((\w+)\)\)\n\s+for k in range\(\1\):\n\s+\w+ = tape\[top \+ k\]",
                     text), text


# Iterations that own their elements (`dlp[k]`), reset a loop-local's adjoint (`dq = 0.0`)
# and hold a nested loop commute: the reverse loop over k runs counting up.
def mixture_rows(x, mu):
    total = 0.0
    lp = np.zeros(mu.shape[0])
    for i in range(x.shape[0]):
        for k in range(mu.shape[0]):
            q = 0.0
            for j in range(x.shape[1]):
                z = x[i, j] - mu[k, j]
                q += z * z
            lp[k] = -0.5 * q
        m = np.max(lp)
        s = 0.0
        for k in range(mu.shape[0]):
            s += np.exp(lp[k] - m)
        total += m + np.log(s)
    return total


def own_elements_updated_twice(x, w):
    total = 0.0
    b = np.zeros(w.shape[0])
    for i in range(x.shape[0]):
        for k in range(w.shape[0]):
            b[k] = np.tanh(x[i, k % x.shape[1]] * w[k])
            for j in range(2):
                b[k] = b[k] * 0.5 + w[k] * j
        total += np.sum(b * b)
    return total


# `q` is read after its loop: the adjoint it carries into the reverse loop belongs to
# the last iteration, so the loop stays counting down.
def last_q_read_after(x, mu):
    total = 0.0
    for i in range(x.shape[0]):
        q = 0.0
        for k in range(mu.shape[0]):
            q = 0.0
            for j in range(x.shape[1]):
                z = x[i, j] - mu[k, j]
                q += z * z
            total += np.sin(q)
        total += q * 0.1
    return total


# iteration k reads the element iteration k - 1 wrote
def neighbour_elements(x, w):
    total = 0.0
    for i in range(x.shape[0]):
        a = x[i] * 1.0
        for k in range(1, a.shape[0]):
            a[k] = a[k] + 0.5 * np.sin(a[k - 1]) * w[k]
        total += np.sum(a * a)
    return total


# what a nested loop sets is read after it, and the nested loop may run no iteration
def set_in_maybe_empty_loop(x, w, m):
    total = 0.0
    for i in range(x.shape[0]):
        for k in range(w.shape[0]):
            t = w[k]
            for j in range(m):
                t = np.sin(t * x[i, j])
            total += t * t
    return total


def _reverse_loop_over_k(fn, args):
    """How the backward of `fn` runs its loops over `k` that hold a nested loop: 'up' or 'down'."""
    backward = srcdiff.grad(fn, wrt=(0, 1)).source_for(*args).split("# backward")[1]
    heads = re.findall(r"\n(\s+)for k in (range\(.*\)):\n((?:\1\s+.*\n)+)", backward)
    return ["down" if ", -1)" in head else "up" for _, head, body in heads if "for j in" in body]


@pytest.mark.parametrize("fn, args, direction", [
    (mixture_rows, (rng(110).normal(size=(4, 3)), rng(111).normal(size=(5, 3))), ["up"]),
    (own_elements_updated_twice, (rng(112).normal(size=(3, 2)), rng(113).normal(size=4)), ["up"]),
    (last_q_read_after, (rng(114).normal(size=(3, 2)), rng(115).normal(size=(4, 2))), ["down"]),
    (set_in_maybe_empty_loop, (rng(116).normal(size=(3, 2)), rng(117).normal(size=4), 2), ["down"]),
    (set_in_maybe_empty_loop, (rng(116).normal(size=(3, 2)), rng(117).normal(size=4), 0), ["down"]),
])
def test_commuting_reverse_loops_with_nested_loops_count_up(fn, args, direction):
    check_loop(fn, *args, wrt=(0, 1))
    assert _reverse_loop_over_k(fn, args) == direction


def _loops_after_run_forwards(code):
    """The ranges of the loops of `code` after `run_forwards`; each `for k in range(N - 1,
    -1, -1)` in `code` is a reverse loop over `range(N)`."""
    tree = ast.parse(textwrap.dedent(code))
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and ast.unparse(node.iter).endswith(", -1, -1)"):
            node.forward_range = ast.Call(ast.Name("range", ast.Load()), [node.iter.args[0].left], [])
    run_forwards(tree.body)
    return [ast.unparse(n.iter) for n in ast.walk(tree) if isinstance(n, ast.For)]


MIXTURE_BACKWARD = """
dq = {start}
for i in range(n - 1, -1, -1):
    for k in range(K - 1, -1, -1):
        g = dlp[{element}]
        dlp[k] = 0.0
        dq += g * 0.5
        for j in range(d):
            dmu[k, j] += dq * x[i, j]
        dq = 0.0
"""


@pytest.mark.parametrize("start, element, inner", [
    ("0.0", "k", "range(K)"),               # every iteration starts from dq == 0.0, owns dlp[k]
    ("5.0", "k", "range(K - 1, -1, -1)"),   # the first iteration to run would take dq == 5.0
    ("0.0", "k + 1", "range(K - 1, -1, -1)"),   # iteration k reads what k + 1 wrote
])
def test_run_forwards_with_nested_loops(start, element, inner):
    loops = _loops_after_run_forwards(MIXTURE_BACKWARD.format(start=start, element=element))
    assert loops == ["range(n - 1, -1, -1)", inner, "range(d)"]


def test_run_forwards_popping_loop_with_a_reset_adjoint():
    # the loop reads its tape entries by position; `dq` still starts every iteration at 0.0
    loops = _loops_after_run_forwards("""
    dq = 0.0
    for i in range(n - 1, -1, -1):
        for k in range(K - 1, -1, -1):
            top -= 1
            e = tape[top]
            dq += e * 0.5
            for j in range(d):
                dmu[k, j] += dq * x[i, j]
            dq = 0.0
    """)
    assert loops == ["range(n - 1, -1, -1)", "range(K)", "range(d)"]


@pytest.mark.parametrize("code", [
    # `u` is set by a nested loop that may run no iteration, then read
    """
    for i in range(n - 1, -1, -1):
        for k in range(K - 1, -1, -1):
            t = w[k]
            for j in range(m):
                u = t * x[i, j]
            dw[k] += u
    """,
    # the body moves its own index, so `dlp[k]` is not the iteration's own element
    """
    for i in range(n - 1, -1, -1):
        for k in range(K - 1, -1, -1):
            g = dlp[k]
            dlp[k] = 0.0
            k = k + 1
            dlp[k] = g
    """,
])
def test_run_forwards_keeps_loops_whose_iterations_may_not_commute(code):
    assert _loops_after_run_forwards(code)[1] == "range(K - 1, -1, -1)"


def test_loop_reading_a_neighbour_element_counts_down():
    args = (rng(118).normal(size=(3, 5)), rng(119).normal(size=5))
    check_loop(neighbour_elements, *args, wrt=(0, 1))
    backward = srcdiff.grad(neighbour_elements, wrt=(0, 1)).source_for(*args).split("# backward")[1]
    assert re.search(r"for k in range\(.*, -1\):", backward), backward


# =====================================================================================
# Tests: 11. arrays carried from one iteration to the next are taped once
# =====================================================================================

def rnn_state(Wx, Wh, b, xs):
    h = np.zeros(Wh.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ Wx + h @ Wh + b)
    return np.sum(h * h)


def carried_with_inner_tape(W, xs):
    h = np.ones(W.shape[0])
    total = 0.0
    for t in range(xs.shape[0]):
        s = 0.0
        for k in range(xs.shape[1]):
            s += np.exp(xs[t, k] * h[0])
        h = np.tanh(W @ h + s)
        total += s
    return total + np.sum(h)


def carried_matrix(A, steps):
    M = A * 0.5 + 1.0
    for t in range(steps):
        M = np.tanh(M @ A)
    return np.sum(M)


def carried_in_outer_loop(W, xs):
    total = 0.0
    for r in range(xs.shape[0]):
        h = xs[r]
        for t in range(3):
            h = np.tanh(W @ h)
        total += np.sum(h)
    return total


def two_carried(W, x0, steps):
    p = x0.copy()
    q = x0 * 0.5
    for t in range(steps):
        p_new = np.tanh(W @ q)
        q = np.sin(p * q)
        p = p_new
    return np.sum(p * q)


def carried_written_in_place(W, x0, steps):
    h = x0.copy()
    for t in range(steps):
        h[0] = h[0] * 0.5
        h = np.tanh(W @ h)
    return np.sum(h)


def carried_with_break(W, x0, steps):
    h = x0.copy()
    for t in range(steps):
        h = np.tanh(W @ h)
        if h[0] > 10.0:
            break
    return np.sum(h)


def broadcast_in_loop(W, c, xs):
    h = np.zeros(W.shape[1])
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ W + c * h)
    return np.sum(h)


def broadcast_rows_in_loop(A, v, steps):
    M = A.copy()
    for t in range(steps):
        M = np.sin(M * v + A)
    return np.sum(M)


def _rnn_args(steps):
    r = rng(71)
    return (0.5 * r.normal(size=(3, 4)), 0.4 * r.normal(size=(4, 4)), 0.1 * r.normal(size=4),
            r.normal(size=(steps, 3)))


@pytest.mark.parametrize("steps", [0, 1, 6])
def test_carried_state(steps):
    check_loop(rnn_state, *_rnn_args(steps), wrt=("Wx", "Wh", "b"))


@pytest.mark.parametrize("fn, args, wrt, carries", [
    (carried_with_inner_tape, (0.3 * rng(72).normal(size=(3, 3)), 0.5 * rng(73).normal(size=(4, 2))),
     ("W", "xs"), True),
    (carried_matrix, (0.4 * rng(74).normal(size=(3, 3)), 4), 0, True),
    (carried_in_outer_loop, (0.5 * rng(75).normal(size=(3, 3)), rng(76).normal(size=(2, 3))),
     ("W", "xs"), True),
    (two_carried, (0.5 * rng(77).normal(size=(3, 3)), rng(78).normal(size=3), 5), ("W", "x0"), True),
    # a write before the copy, or a break: the start of an iteration is not the last end
    (carried_written_in_place, (0.5 * rng(79).normal(size=(3, 3)), rng(80).normal(size=3), 4),
     ("W", "x0"), False),
    (carried_with_break, (0.5 * rng(81).normal(size=(3, 3)), rng(82).normal(size=3), 4),
     ("W", "x0"), False),
])
def test_carried_arrays(fn, args, wrt, carries):
    check_loop(fn, *args, wrt=wrt)
    backward = srcdiff.grad(fn, wrt=wrt).source_for(*args).split("# backward")[1]
    popped_before_loop = re.search(r"(\w+), top = pop_array\d\(tape, top\)\n"
                                   r"(\s+\w+ = np\.empty\(.+, np\.float64\)\n)*\s+for ", backward)
    assert bool(popped_before_loop) == carries, backward


def test_carried_state_is_taped_once_per_step():
    text = srcdiff.grad(rnn_state, wrt=(0, 1, 2)).source_for(*_rnn_args(3)).split("def gradient")[1]
    forward, backward = text.split("# backward")
    assert forward.count("push_array") == 2, text      # per iteration, and once after the loop
    assert "tape[top" not in forward, text             # dims come from the weights, not the tape
    # the backward takes each step's output from the state it popped the step before
    assert re.search(r"(\w+), top = pop_array1\(tape, top\)\n(\s+\w+ = np\.empty\(.*\)\n)*"
                     r"\s+for t in .*\n\s+(\w+) = \1\n\s+\1, top = pop_array1\(tape, top\)",
                     backward), text


@pytest.mark.parametrize("fn, args, wrt", [
    (broadcast_in_loop, (0.5 * rng(83).normal(size=(3, 4)), np.array([0.7]), rng(84).normal(size=(5, 3))),
     ("W", "c")),
    (broadcast_in_loop, (0.5 * rng(85).normal(size=(3, 4)), 0.3 * rng(86).normal(size=4),
                         rng(87).normal(size=(5, 3))), ("W", "c")),
    (broadcast_rows_in_loop, (0.5 * rng(88).normal(size=(2, 3)), 0.8 * rng(89).normal(size=3), 3),
     ("A", "v")),
    (broadcast_rows_in_loop, (0.5 * rng(90).normal(size=(2, 3)), np.array([[0.9], [-0.6]]), 3),
     ("A", "v")),
])
def test_dims_from_operands_under_broadcasting(fn, args, wrt):
    check_loop(fn, *args, wrt=wrt)


def test_elementwise_chain_is_one_expression():
    source = srcdiff.grad(rnn_state, wrt=(0, 1, 2)).source_for(*_rnn_args(3))
    assert re.search(r"= tanh\(t\d+ \+ t\d+ \+ b\)", source), source


# =====================================================================================
# Tests: 12. an array taped only for its max (or min) tapes where the extreme is
# =====================================================================================

def row_max_shifted(x, w):
    lp = np.zeros(x.shape[1])
    total = 0.0
    for i in range(x.shape[0]):
        for k in range(x.shape[1]):
            lp[k] = x[i, k] * w[k]
        m = np.max(lp)
        s = 0.0
        for k in range(x.shape[1]):
            s += np.exp(lp[k] - m)
        total += 0.5 * m + np.log(s)     # half the shift: m does not cancel, ties matter
    return total


def row_min_of_squares(x):
    total = 0.0
    for i in range(x.shape[0]):
        r = x[i] * x[i] + 1.0
        total += np.min(r) * x[i, 0]
    return total


def row_max_also_summed(x):
    total = 0.0
    for i in range(x.shape[0]):
        r = np.sin(x[i])
        total += np.max(r) + np.sum(r * r)
    return total


@pytest.mark.parametrize("fn, args, wrt, positions", [
    (row_max_shifted, (rng(91).normal(size=(5, 4)), rng(92).normal(size=4)), ("x", "w"), True),
    (row_min_of_squares, (rng(93).normal(size=(4, 3)),), 0, True),
    (row_max_also_summed, (rng(94).normal(size=(4, 3)),), 0, False),   # r read by `*` as well
])
def test_extremes_taped_as_positions(fn, args, wrt, positions):
    check_loop(fn, *args, wrt=wrt)
    source = srcdiff.grad(fn, wrt=wrt).source_for(*args)
    assert ("push_extremes" in source) == positions, source


def test_extremes_share_ties_equally():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    for compile in (True, False):
        dx = srcdiff.grad(row_min_of_squares, compile=compile)(np.array([[1.0, -1.0, 1.0]]))
        # min of x*x + 1 is tied in all three places: each gets the adjoint / 3
        np.testing.assert_allclose(dx, [[2.0 + 2.0 / 3, -2.0 / 3, 2.0 / 3]], rtol=1e-12)
        dx = srcdiff.grad(row_max_shifted, compile=compile)(x, np.ones(3))
        expected = np.exp(x - x.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
        tied = x == x.max(axis=1, keepdims=True)
        expected -= 0.5 * tied / tied.sum(axis=1, keepdims=True)     # m's adjoint, 0.5 - 1
        np.testing.assert_allclose(dx, expected, rtol=1e-12)


def carried_and_maxed(W, x0, steps):
    h = x0.copy()
    total = 0.0
    for t in range(steps):
        h = np.tanh(W @ h)
        total += np.max(h)
    return total


def test_carried_array_whose_max_is_taken():
    W, x0 = 0.8 * rng(95).normal(size=(3, 3)), rng(96).normal(size=3)
    check_loop(carried_and_maxed, W, x0, 4, wrt=("W", "x0"))


# =====================================================================================
# Tests: 13. a product a loop carries alternates between two buffers
# =====================================================================================

def power_steps(W, v0, steps):
    v = v0.copy()
    for t in range(steps):
        v = W @ v
    return np.sum(v * v)


def row_power_steps(W, v0, steps):
    v = v0.copy()
    for t in range(steps):
        v = v @ W
    return np.sum(np.sin(v))


def power_restarted(W, xs):
    total = 0.0
    for r in range(xs.shape[0]):
        h = xs[r]
        for t in range(3):
            h = W @ h
        total += np.sum(h * h)
    return total


def swapped_products(A, B, x0, steps):
    x = x0.copy()
    y = x0 * 2.0
    for t in range(steps):
        x_new = A @ y
        y = B @ x
        x = x_new
    return np.sum(x * y)


def state_read_through_a_name(W, v0, steps):
    v = v0.copy()
    acc = 0.0
    for t in range(steps):
        acc = acc + np.sum(np.cos(v))
        u = v
        v = W @ u
        acc = acc + np.sum(u * v)
    return acc


# The product's buffer from two steps back is still read: `prev` holds it.
def lagged_state(W, v0, steps):
    v = v0.copy()
    prev = v0 * 1.0
    acc = 0.0
    for t in range(steps):
        v_new = W @ v
        acc = acc + np.sum(prev * v_new)
        prev = v
        v = v_new
    return acc + np.sum(v)


# A view of the state outlives its step.
def state_view_kept(W, v0, steps):
    v = v0.copy()
    head = v0[:2] * 1.0
    acc = 0.0
    for t in range(steps):
        acc = acc + np.sum(head * v[:2])
        head = v[:2]
        v = W @ v
    return acc + np.sum(v * v)


# A break may leave the state unrebound.
def power_with_break(W, v0, steps):
    v = v0.copy()
    for t in range(steps):
        v = W @ v
        if v[0] > 100.0:
            break
    return np.sum(v * v)


def _square(seed, n=4, scale=0.5):
    return scale * rng(seed).normal(size=(n, n))


def _alternating(source, function):
    """How many products in `function` of `source` alternate between two buffers."""
    text = source.split(f"def {function}(")[1].split("\ndef ")[0]
    return len(re.findall(r"\n\s+(\w+), (\w+) = \(\2, \w+\)\n", text))


@pytest.mark.parametrize("fn, args, wrt, forward, gradient", [
    (power_steps, (_square(91), rng(92).normal(size=4), 5), ("W", "v0"), 1, 2),
    (power_steps, (_square(91), rng(92).normal(size=4), 0), ("W", "v0"), 1, 2),
    (power_steps, (_square(91), rng(92).normal(size=4), 1), ("W", "v0"), 1, 2),
    (row_power_steps, (_square(93), rng(94).normal(size=4), 5), ("W", "v0"), 1, 2),
    (power_restarted, (_square(95), rng(96).normal(size=(3, 4))), ("W", "xs"), 1, 2),
    (swapped_products, (_square(97), _square(98), rng(99).normal(size=4), 5), ("A", "B", "x0"), 2, 4),
    (state_read_through_a_name, (_square(100), rng(101).normal(size=4), 5), ("W", "v0"), 1, 1),
    (rnn_state, _rnn_args(6), ("Wx", "Wh", "b"), 0, 1),
    (lagged_state, (_square(102), rng(103).normal(size=4), 5), ("W", "v0"), 0, 0),
    (state_view_kept, (_square(104), rng(105).normal(size=4), 5), ("W", "v0"), 0, 0),
    (power_with_break, (_square(106), rng(107).normal(size=4), 5), ("W", "v0"), 0, 1),
])
def test_carried_products_alternate_buffers(fn, args, wrt, forward, gradient):
    check_loop(fn, *args, wrt=wrt)
    source = srcdiff.grad(fn, wrt=wrt).source_for(*args)
    assert (_alternating(source, "forward"), _alternating(source, "gradient")) == (forward, gradient), source


def test_carried_product_in_float32():
    args = (_square(108).astype(np.float32), rng(109).normal(size=4).astype(np.float32), 4)
    assert_grad_matches_fd(power_steps, args, wrt=("W", "v0"), rtol=2e-2, atol=1e-3, eps=1e-2,
                           agree_rtol=1e-5)
    source = srcdiff.grad(power_steps, wrt=(0, 1)).source_for(*args)
    assert "v_a = np.empty(W.shape[0], np.float32)" in source, source


def power_steps_decaying(W, v0, steps):
    v = v0.copy()
    for t in range(steps):
        v = W @ v
        W = W * 0.9                     # the matrix changes: no fixed size for the product
    return np.sum(v * v)


def test_a_product_by_a_fixed_matrix_fills_a_buffer_sized_before_the_loop():
    source = srcdiff.grad(rnn_state, wrt=(0, 1, 2)).source_for(*_rnn_args(3))
    filled = re.search(r"\n\s+vecmat_fill\((\w+), \w+, Wx\)\n", source)
    assert filled and f"{filled[1]} = np.empty(Wx.shape[1], np.float64)" in source, source
    assert re.search(r"matvec_fill\((\w+)_a, Wh, \w+\)\n\s+\1 = \1_a\n", source), source
    assert "_into(" not in source
    args = (_square(110), rng(111).normal(size=4), 5)
    check_loop(power_steps_decaying, *args, wrt=("W", "v0"))
    decaying = srcdiff.grad(power_steps_decaying, wrt=(0, 1)).source_for(*args)
    assert "matvec_into(" in decaying and "_fill(" not in decaying


def test_a_filled_product_of_mismatched_shapes_is_a_clear_error():
    W, v0 = _square(112), rng(113).normal(size=5)
    for compiled in (True, False):
        with pytest.raises(srcdiff.SrcdiffError, match="v = W @ v"):
            srcdiff.grad(power_steps, wrt=(0, 1), compile=compiled)(W, v0, 3)


# ---- the tape reserved once, ahead of a loop, when its size is known at entry --------------
def logistic_nll_by_sample(w, X, y):
    nll = 0.0
    for i in range(X.shape[0]):
        z = 0.0
        for j in range(X.shape[1]):
            z += X[i, j] * w[j]
        if z > 0.0:                                    # the two arms tape different values
            nll += (1.0 - y[i]) * z + np.log1p(np.exp(-z))
        else:
            nll += -y[i] * z + np.log1p(np.exp(z))
    return nll


def heat_steps(u0, kappa, steps):
    n = u0.shape[0]
    u = u0.copy()
    un = u0.copy()
    for t in range(steps):
        for i in range(1, n - 1):                      # `n - 1` computed in the step loop
            un[i] = u[i] + 0.2 * kappa[i] * (u[i + 1] - 2.0 * u[i] + u[i - 1])
        for i in range(1, n - 1):
            u[i] = un[i]
    return np.sum(u * u * kappa)


def chain_forces(q, f, alpha):
    n = q.shape[0]
    for i in range(n - 1):                             # n - 1 from the inlined q.shape[0]
        r = q[i + 1] - q[i]
        fb = r + alpha * r * r
        f[i] += fb
        f[i + 1] -= fb
    return f


def chain_steps(q0, alpha, steps):
    q = q0.copy()
    f = np.zeros(q0.shape[0])
    for t in range(steps):
        f = f * 0.0
        f = chain_forces(q, f, alpha)
        for i in range(q.shape[0]):
            q[i] += 0.1 * f[i]
    return np.sum(q * q * q)


def triangle_of_products(x):
    s = 0.0
    for t in range(x.shape[0]):
        m = t + 1                                      # changes with t: counted as it runs
        for i in range(m):
            s = np.sin(s + x[i]) * x[t]                 # taped: s changes
    return s


def _reserves(source):
    """(reserves in the gradient, reserves inside one of its loops) by indentation."""
    text = source.split("def gradient(")[1]
    lines = [ln for ln in text.splitlines() if "reserve(" in ln]
    return len(lines), sum(len(ln) - len(ln.lstrip()) > 8 for ln in lines)


@pytest.mark.parametrize("fn, args, wrt, inside", [
    (logistic_nll_by_sample, (rng(111).normal(size=3), rng(112).normal(size=(6, 3)),
                              (rng(113).random(6) > 0.5) * 1.0), 0, 0),
    (heat_steps, (rng(114).normal(size=7), rng(115).uniform(0.1, 0.4, 7), 4), (0, 1), 0),
    (chain_steps, (rng(126).normal(size=6), 0.3, 4), (0, 1), 0),
    (triangle_of_products, (rng(116).normal(size=5),), 0, 1),
])
def test_the_tape_is_reserved_ahead_of_a_loop_when_its_size_is_known(fn, args, wrt, inside):
    check_loop(fn, *args, wrt=wrt)
    source = srcdiff.grad(fn, wrt=wrt).source_for(*args)
    assert _reserves(source)[1] == inside, source


def test_a_value_recomputed_from_several_reads_is_taped_itself():
    # the stencil's u[i+1] - 2 u[i] + u[i-1] is needed for dkappa: one value on the tape, not
    # the three reads of u (which the step loop overwrites) it could be recomputed from
    args = (rng(117).normal(size=7), rng(118).uniform(0.1, 0.4, 7), 4)
    check_loop(heat_steps, *args, wrt=(0, 1))
    source = srcdiff.grad(heat_steps, wrt=(0, 1)).source_for(*args)
    stencil = source.split("def gradient(")[1].split("u[i] = un[i]")[0]
    assert stencil.count("tape[top") == 1, source


# ---- reversed(range(...)) -------------------------------------------------------------------
def horner_from_the_end(x):
    s = 0.0
    for i in reversed(range(x.shape[0])):
        s = s * 0.5 + np.sin(x[i])
    return s


def reversed_odd_pairs(x):
    s = 0.0
    for i in reversed(range(1, x.shape[0], 2)):
        s = s * 0.7 + x[i] * x[i - 1]
    return s


def reversed_downward_range(x):
    s = 0.0
    for i in reversed(range(x.shape[0] - 1, -1, -3)):    # runs upward: 0 or more, step 3
        s = s * 0.7 + np.cos(x[i]) * s + x[i]
    return s


def reversed_empty_range(x):
    s = 0.0
    for i in reversed(range(3, 3)):
        s = s + x[i]
    return s + x[0]


@pytest.mark.parametrize("fn", [horner_from_the_end, reversed_odd_pairs, reversed_downward_range,
                                reversed_empty_range])
@pytest.mark.parametrize("n", [5, 6, 7])
def test_reversed_range_loops(fn, n):
    x = rng(119 + n).normal(size=n)
    check_loop(fn, x)
    assert np.isclose(srcdiff.value_and_grad(fn)(x)[0], fn(x), rtol=1e-12)


# ---- loops over arrays: for v in x, enumerate, zip ------------------------------------------
def decaying_sum_over_entries(x):
    s = 0.0
    for v in x:
        s = s * 0.5 + np.sin(v)
    return s


def rows_through_tanh(A, w):
    s = 0.0
    for row in A:
        s += np.sum(np.tanh(row * w))
    return s


def zipped_and_enumerated(x, y):
    s = 0.0
    for a, b in zip(x, y):                # stops at the shorter one
        s += a * b * b
    for i, v in enumerate(x):
        s += v * i
    return s


def enumerates_zipped(x, y):
    s = 0.0
    for i, (a, b) in enumerate(zip(x, y)):
        s += (i + 1) * a * np.sin(b)
    return s


def iterates_the_array_taken_before_the_loop(x):
    s = 0.0
    for v in x * 2.0:
        x = x + 1.0
        s += v * np.sum(x)
    return s


def writes_the_array_it_iterates(y0, w):
    y = y0 * 1.0
    for i, v in enumerate(y):                 # NumPy reads y[i] as it is at step i
        y[i] = np.sin(v) * w[i]
        if i + 1 < y.shape[0]:
            y[i + 1] = y[i + 1] + v
    return np.sum(y * y)


@pytest.mark.parametrize("fn, args, wrt", [
    (writes_the_array_it_iterates, (rng(127).normal(size=5), rng(128).normal(size=5)), (0, 1)),
    (decaying_sum_over_entries, (rng(120).normal(size=5),), 0),
    (rows_through_tanh, (rng(121).normal(size=(3, 4)), rng(122).normal(size=4)), (0, 1)),
    (zipped_and_enumerated, (rng(123).normal(size=5), rng(124).normal(size=4)), (0, 1)),
    (iterates_the_array_taken_before_the_loop, (rng(125).normal(size=4),), 0),
    (enumerates_zipped, (rng(129).normal(size=5), rng(130).normal(size=4)), (0, 1)),
])
def test_loops_over_the_entries_of_arrays(fn, args, wrt):
    check_loop(fn, *args, wrt=wrt)
    assert np.isclose(srcdiff.value_and_grad(fn, wrt=wrt)(*args)[0], fn(*args), rtol=1e-12)


# ---- a rollout whose right-hand side builds its vector with np.array ------------------------
def oscillator(y, k):
    return np.array([y[1], -k * y[0] - 0.1 * y[1]])


def rk4_rollout(y0, k, h):
    y = y0.copy()
    for i in range(20):
        k1 = oscillator(y, k)
        k2 = oscillator(y + 0.5 * h * k1, k)
        k3 = oscillator(y + 0.5 * h * k2, k)
        k4 = oscillator(y + h * k3, k)
        y = y + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return y[0] ** 2 + 0.5 * y[1] ** 2


def test_rk4_with_an_np_array_right_hand_side():
    assert_grad_matches_fd(rk4_rollout, (np.array([1.0, 0.0]), 1.3, 0.1), wrt=(0, 1))


# ---- a range whose step is an argument -----------------------------------------------------
def strided_squares(x, k):
    s = 0.0
    for i in range(0, x.shape[0], k):
        s += x[i] ** 2 * (i + 1)
    return s


def strided_recurrence(x, a, b, k):
    s = 0.0
    h = 1.0
    for i in range(a, b, k):
        h = np.sin(h * x[i]) + x[i]
        s += h
        if s > 4.0:
            break
    return s


def test_a_range_step_known_at_run_time_of_either_sign():
    x = np.linspace(0.1, 1.3, 7)
    for k in (1, 2, 3, 10):
        assert_grad_matches_fd(strided_squares, (x, k))
    for a, b, k in ((0, 7, 2), (6, -1, -1), (6, 0, -2), (3, 3, 1), (5, 1, 1), (0, 7, 3)):
        assert_grad_matches_fd(strided_recurrence, (x, a, b, k))
    g = srcdiff.grad(strided_recurrence)
    g(x, 6, -1, -2)
    assert "range((trips - 1) * k + a, a - k, -k)" in g.source
    assert g.source.count("tape[top] = ") == 1         # one value taped per iteration, once


# =====================================================================================
# returns inside loops and in branches that may go on: moved to the end of the function
# =====================================================================================
def sum_until_over_one(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
        if s > 1.0:
            return s * 2.0
    return s


def newton_square_root(a):
    x = a
    for it in range(50):
        dx = (x * x - a) / (2.0 * x)
        x = x - dx
        if abs(dx) < 1e-12:
            return x
    return x


def leaves_both_loops(M):
    acc = 0.0
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            acc += M[i, j] ** 2
            if acc > 2.0:
                return acc * M[i, j]
        acc = acc * 1.5
    return -acc


def damped_until_ten_steps(x):
    k = 0
    while True:
        x = x * 0.5 + 0.1 * x * x
        k += 1
        if k >= 10:
            return x * x


def nested_branch_may_return(x, a, b):
    if a > 0.0:
        if b > 0.0:
            return x * 3.0
        y = x * x
    else:
        if b < 0.0:
            return np.sin(x)
        y = x ** 3
    return y + x


def interval_of(knots, t):
    for i in range(knots.shape[0] - 1):
        if t < knots[i + 1]:
            return i
    return knots.shape[0] - 2


def piecewise_linear(knots, values, t):
    i = interval_of(knots, t)
    w = (t - knots[i]) / (knots[i + 1] - knots[i])
    return (1.0 - w) * values[i] + w * values[i + 1]


KNOTS = np.array([0.0, 0.7, 1.5, 3.0])


@pytest.mark.parametrize("fn, args, wrt", [
    (sum_until_over_one, (np.array([0.3, 0.6, 0.9, 0.2]),), 0),
    (sum_until_over_one, (np.array([0.1, 0.2, 0.3]),), 0),
    (newton_square_root, (2.0,), 0),
    (leaves_both_loops, (np.array([[0.5, 0.6], [0.7, 0.8], [0.9, 1.0]]),), 0),
    (leaves_both_loops, (np.array([[0.1, 0.2], [0.3, 0.1]]),), 0),
    (damped_until_ten_steps, (0.8,), 0),
    (nested_branch_may_return, (0.7, 1.0, 1.0), 0),
    (nested_branch_may_return, (0.7, 1.0, -1.0), 0),
    (nested_branch_may_return, (0.7, -1.0, -1.0), 0),
    (nested_branch_may_return, (0.7, -1.0, 1.0), 0),
    (piecewise_linear, (KNOTS, np.array([1.0, -0.5, 2.0, 0.3]), 1.1), (1, 2)),
    (piecewise_linear, (KNOTS, np.array([1.0, -0.5, 2.0, 0.3]), 2.2), (1, 2)),
], ids=lambda v: getattr(v, "__name__", None))
def test_returns_inside_loops_and_branches_that_may_go_on(fn, args, wrt):
    check_loop(fn, *args, wrt=wrt)


def halves_until_one(x0):
    x = x0 * 1.0
    while x.shape[0] > 1:
        x = x[::2] * x[1::2]
    return x[0]


def shrinks_by_one(h0, w):
    h = h0 * 1.0
    for t in range(w.shape[0]):
        h = np.tanh(h[1:] * w[t])
    return np.sum(h)


@pytest.mark.parametrize("fn, args", [(halves_until_one, (np.arange(1.0, 5.0),)),
                                      (shrinks_by_one, (np.linspace(0.1, 0.5, 5), np.ones(3)))],
                         ids=["halves_until_one", "shrinks_by_one"])
def test_an_array_changing_shape_in_a_loop_that_indexes_it(fn, args):
    """Undoing `h = ...` resets h's adjoint to zeros shaped as the value it replaced (its
    dims taped each iteration), not as the final one."""
    check_loop(fn, *args)


def masked_halving(x, ts):
    y = x * 1.0
    for k in range(ts.shape[0]):
        y[y > ts[k]] *= 0.5
    return np.sum(y ** 2)


def picks_of_a_changing_array(x):
    y = x.copy()
    s = 0.0
    for i in range(x.shape[0]):
        y[i] += 1.0
        s += np.sum(y[x > x[i]])
    return s


def tail_of_a_changing_array(x):
    y = x * 1.0
    s = 0.0
    for i in range(x.shape[0]):
        y[i] = 0.0
        z = y[i:]
        s += np.sum(z * x[i:])
    return s


def test_masks_whose_count_changes_from_one_iteration_to_the_next():
    x = np.array([0.3, -1.2, 0.8, 2.0, -0.1, 1.1])
    check_loop(masked_halving, x, np.array([1.5, 0.5, -0.5]))
    check_loop(picks_of_a_changing_array, x)


def test_a_slice_of_changing_length_bound_to_a_name():
    check_loop(tail_of_a_changing_array, np.array([1.0, 2.0, 3.0, 4.0]))


def shrinking_state(w, x0, steps):
    h = x0.copy()
    for t in range(steps):
        h = np.tanh(h[1:] * w[t])
    return np.sum(h)


def test_a_state_that_shrinks_every_step():
    check_loop(shrinking_state, np.array([0.4, -0.2, 0.7]), np.linspace(0.1, 0.5, 5), 3, wrt=(0, 1))


def pairs_multiplied(x):
    for _ in range(2):
        x = x[::2] * x[1::2]
    return np.sum(x)


def grows_by_its_first_entry(x):
    for _ in range(3):
        x = np.concatenate((x, x[:1] * 2.0))
    return np.sum(x * x)


def test_a_name_rebound_to_a_halved_or_a_grown_array():
    check_loop(pairs_multiplied, np.linspace(0.5, 1.2, 8))
    check_loop(grows_by_its_first_entry, np.array([0.3, -0.6, 0.9, 1.1]))


# ---- a name rebound to a part of itself: the old value's adjoint is a new array ---------------
def drops_the_first_entry_twice(x):
    h = x * 1.0
    for _ in range(2):
        h = h[1:]
    return np.sum(h * h)


def maybe_drops_the_first_entry(x):
    h = x * 1.0
    if x[0] > 0:
        h = h[1:]
    return np.sum(h * h)


def maybe_reversed(x, reverse):
    if reverse > 0:
        x = x[::-1]
    return np.sum(x * np.arange(x.shape[0]))


def rebound_to_all_of_itself(x):
    h = x * 1.0
    for _ in range(2):
        h = h[:]
    return np.sum(h * np.arange(h.shape[0]))


def kept_above_a_threshold(x):
    h = x * 1.0
    for t in range(2):
        h = h[h > 0.2 * t]
    return np.sum(h ** 3)


def test_a_name_rebound_to_a_part_of_itself_in_a_loop_or_a_branch():
    """`h = h[1:]` undone: g goes into a new adjoint of the old h's shape (it went into the
    same array, `dh[1:] += dh`, which summed overlapping entries or read past its end)."""
    x = np.array([0.3, 0.9, 0.6, 1.2, 0.8, 0.1])
    check_loop(drops_the_first_entry_twice, x)
    check_loop(maybe_drops_the_first_entry, x)
    check_loop(maybe_reversed, x, 1)
    check_loop(rebound_to_all_of_itself, x)
    check_loop(kept_above_a_threshold, x - 0.25)
    g = srcdiff.grad(maybe_reversed)(x, 1)
    np.testing.assert_allclose(g, [5.0, 4.0, 3.0, 2.0, 1.0, 0.0])


# ---- double buffers: `u, v = v, u` hands adjoints over instead of adding them -------------
def heat_with_two_buffers(u0, r, steps):
    n = u0.shape[0]
    u = u0.copy()
    v = np.zeros(n)
    for t in range(steps):
        for i in range(1, n - 1):
            v[i] = u[i] + r * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        v[0] = 0.0
        v[n - 1] = 0.0
        u, v = v, u
    return np.sum(u * u) + 0.5 * np.sum(v)


def wave_with_three_buffers(u0, c, steps):
    n = u0.shape[0]
    old = u0.copy()
    now = u0 * 1.0
    new = np.zeros(n)
    for t in range(steps):
        for i in range(n):
            new[i] = 2.0 * now[i] - old[i] + c * (now[(i + 1) % n] - 2.0 * now[i] + now[i - 1])
        old, now, new = now, new, old
    return np.sum(now ** 3) + np.sum(old * new)


def swap_then_read_the_old_buffer(x, steps):
    a = x * 1.0
    b = x * 2.0
    s = 0.0
    for t in range(steps):
        a, b = b, a
        s += np.sum(np.sin(b) * a)
        a[0] = a[0] * 0.5
    return s + np.sum(a * b)


def test_double_and_triple_buffers():
    u0 = np.sin(np.linspace(0.0, 3.0, 9))
    check_loop(heat_with_two_buffers, u0, 0.2, 7, wrt=(0, 1))
    check_loop(wave_with_three_buffers, u0, 0.1, 6, wrt=(0, 1))
    check_loop(swap_then_read_the_old_buffer, u0, 3)


def test_undoing_a_swap_allocates_at_most_one_adjoint_per_step():
    """`du, dv` change places: the backward of `u, v = v, u` adds no whole arrays and
    allocates at most the one array a reset needs (it was three, and three additions)."""
    source = srcdiff.grad(heat_with_two_buffers).source_for(np.ones(6), 0.2, 3)
    backward = source[source.index("# backward"):]
    step = backward[backward.index("reverse of line"):backward.index("reverse of line", backward.index("reverse of line") + 1)]
    assert step.count("np.zeros(") <= 1, step
    assert step.count(" += d") <= 1, step


# ---- copies bound on to other names are not taken away --------------------------------------
def copies_the_state_each_step(x):
    a = x * 2.0
    for _ in range(2):
        a, c = a.copy(), a
    c[0] = 5.0
    return np.sum(a * a) + np.sum(c)


def swaps_copies_and_writes_after_the_loop(x):
    a = x * 2.0
    b = x * x
    d = x * 1.0
    for _ in range(2):
        a, c = a.copy(), a
        b, c = c, b
    d, c = c, d
    d[1:] += 0.5 * b[:-1]
    return np.sum(a * b) + np.sum(c * np.sin(d))


def test_a_copy_bound_to_a_name_that_outlives_its_loop():
    """`a.copy()` bound to `a` in a loop, then a write after the loop into the array `a`
    was copied from: the copy was dropped, and the write changed `a` (its value and, with
    `b` sharing it, its gradient)."""
    x = np.array([0.3, -0.7, 1.1, 0.4])
    check_loop(copies_the_state_each_step, x)
    check_loop(swaps_copies_and_writes_after_the_loop, x)
    assert srcdiff.grad(copies_the_state_each_step).forward(x) == copies_the_state_each_step(x)


def adds_a_buffer_then_rebinds_it(x, y):
    d = x * 1.0
    a = y * 1.0
    for _ in range(3):
        a[0] = a[0] * 2.0
        d += a
        a = np.sin(d)
    return np.sum(d * d) + np.sum(a)


def adds_then_rotates(x):
    a = np.sin(x)
    b = x * 2.0
    c = x * 1.0
    d = x * x
    for _ in range(2):
        d += a
        c, a = np.concatenate((c[1:], c[:1])), c
    return np.sum(a * b) + np.sum(c * np.sin(d))


def swaps_a_transposed_buffer(A):
    U = A * 1.0
    V = A * 2.0
    s = 0.0
    for _ in range(3):
        U, V = V.T, U
        U[0, 1] = U[0, 1] * V[1, 0]
        s += np.sum(np.sin(U) * V)
    return s


def interpolates_on_a_grid(x, w, h):
    s = 0.0
    for i in range(x.shape[0]):
        q = x[i] / h
        k = int(q)
        frac = q - k
        s += w[k] * (1.0 - frac) + w[k + 1] * frac
    return s


def test_adjoints_that_a_helper_shares_are_not_handed_over():
    """`d += a` undone gives da and dd the same array (unbroadcast_to returns its input): it
    must not be handed over to both."""
    check_loop(adds_a_buffer_then_rebinds_it, np.linspace(0.1, 0.9, 5), np.linspace(-0.3, 0.4, 5),
               wrt=(0, 1))
    check_loop(adds_then_rotates, np.linspace(0.2, 1.0, 5))


def test_a_swapped_transposed_buffer_and_a_quotient_read_twice():
    check_loop(swaps_a_transposed_buffer, np.arange(1.0, 10.0).reshape(3, 3) * 0.1)
    # 0.3 / 0.1 is 2.9999999999999996: the backward must see the forward's interval, k = 2
    # (finite differences step over the knot, so the slopes are written out)
    x, w, h = np.array([0.3, 0.15, 0.35]), np.array([1.0, 2.0, 4.0, 8.0, 16.0]), 0.1
    k = (x / h).astype(int)
    frac = x / h - k
    dw = np.zeros_like(w)
    np.add.at(dw, k, 1.0 - frac)
    np.add.at(dw, k + 1, frac)
    check_loop(interpolates_on_a_grid, x, w, h, wrt=(0, 1),
               expected=[(w[k + 1] - w[k]) / h, dw])
