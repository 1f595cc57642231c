"""Tests for srcdiff.runtime: every helper from plain Python and from numba.

The array helpers are exercised by one function, ``helpers_on``, run as is
(plain Python) and compiled with ``numba.njit``, and compared with direct
NumPy references.  Plain-Python checks run over the full grid
rank x axis x dtype x layout.  Every new argument type costs numba about half
a second per helper to compile (about 10 s for all of them), so the numba
checks use three (rank, dtype, layout) combinations that cover every rank,
dtype and layout, each with every axis; one compiled wrapper serves them all.
Other numba tests reuse those argument types where they can.
"""

import itertools
import math
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from srcdiff import runtime as rt
from srcdiff.tape import pop_extremes, push_extremes

SHAPES = {1: (7,), 2: (4, 5), 3: (3, 4, 5)}
DTYPES = (np.float64, np.float32)
LAYOUTS = ("C", "strided")
GRID = list(itertools.product(SHAPES, DTYPES, LAYOUTS))
NUMBA_GRID = [(1, np.float32, "strided"), (2, np.float64, "C"), (3, np.float64, "strided")]


def _with_axes(grid):
    """Expand (rank, dtype, layout) triples with every valid axis."""
    return [(r, d, l, a) for r, d, l in grid for a in range(-r, r)]


def _id(v):
    return v.__name__ if isinstance(v, type) else str(v)


def tol(dtype):
    """assert_allclose tolerances for a float dtype."""
    if np.dtype(dtype) == np.float32:
        return dict(rtol=2e-5, atol=2e-5)
    return dict(rtol=1e-12, atol=1e-12)


def as_layout(values, dtype, layout):
    """A copy of values in dtype; layout 'strided' gives a non-contiguous view.

    For 2-D and up the view is a transpose of a strided array, so it is
    neither C- nor F-ordered.
    """
    values = np.asarray(values, dtype)
    if layout == "C":
        return values.copy()
    shape = values.shape
    base = np.zeros((2 * shape[-1],) + shape[-2::-1], dtype)
    x = base[::2] if values.ndim == 1 else base[::2].T
    x[...] = values
    assert x.shape == shape and not x.flags.c_contiguous
    return x


def make(shape, dtype, layout, seed=0, ties=False):
    """Random array; with ties=True its entries are 0, 1 or 2, so max/min tie often."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)
    return as_layout(values, dtype, layout)


def check(got, want, dtype, name=""):
    """got matches want in shape, dtype (for arrays) and value."""
    assert np.shape(got) == np.shape(want), name
    if isinstance(got, np.ndarray):
        assert got.dtype == dtype, name
    np.testing.assert_allclose(got, want, err_msg=name, **tol(dtype))


# ---------------------------------------------------------------------------
# Array helpers, through one function run in both modes
# ---------------------------------------------------------------------------

NAMES = (
    ("sum_over", "sum_over_keep", "mean_over", "mean_over_keep",
     "max_over", "max_over_keep", "min_over", "min_over_keep",
     "softmax_over", "log_softmax_over", "logsumexp_over_keep"),
    ("spread", "spread_keep", "tie_mask", "tie_mask_keep"),
    ("spread_all", "tie_mask_all", "softmax_all", "log_softmax_all", "logsumexp_all"),
)


def helpers_on(x, axis, total, top):
    """Every array helper applied to x (total = sum of x, top = max of x)."""
    g, gk = rt.sum_over(x, axis), rt.sum_over_keep(x, axis)
    m, mk = rt.max_over(x, axis), rt.max_over_keep(x, axis)
    along_axis = (g, gk, rt.mean_over(x, axis), rt.mean_over_keep(x, axis), m, mk,
                  rt.min_over(x, axis), rt.min_over_keep(x, axis),
                  rt.softmax_over(x, axis), rt.log_softmax_over(x, axis),
                  rt.logsumexp_over_keep(x, axis))
    backward = (rt.spread(g, x, axis), rt.spread(gk, x, axis),
                rt.tie_mask(x, m, axis), rt.tie_mask(x, mk, axis))
    full = (rt.spread_all(total, x), rt.tie_mask_all(x, top),
            rt.softmax_all(x), rt.log_softmax_all(x), rt.logsumexp_all(x))
    return along_axis, backward, full


RUNNERS = {"python": helpers_on, "numba": numba.njit(helpers_on)}


def run_helpers(mode, x, axis):
    return RUNNERS[mode](x, axis, np.sum(x), np.max(x))


def reference(x, axis):
    """Expected results of helpers_on, computed directly with NumPy."""
    z = x.astype(np.float64)
    lse = np.max(z, axis, keepdims=True)
    lse = lse + np.log(np.sum(np.exp(z - lse), axis, keepdims=True))
    lse_all = np.max(z) + np.log(np.sum(np.exp(z - np.max(z))))
    eq = x == np.max(x, axis, keepdims=True)
    ties = eq / np.sum(eq, axis, keepdims=True)
    eq_all = x == np.max(x)
    spread = np.broadcast_to(np.sum(x, axis, keepdims=True), x.shape)
    along_axis = (np.sum(x, axis), np.sum(x, axis, keepdims=True),
                  np.mean(x, axis), np.mean(x, axis, keepdims=True),
                  np.max(x, axis), np.max(x, axis, keepdims=True),
                  np.min(x, axis), np.min(x, axis, keepdims=True),
                  np.exp(z - lse), z - lse, lse)
    full = (np.full(x.shape, np.sum(x)), eq_all / np.sum(eq_all),
            np.exp(z - lse_all), z - lse_all, lse_all)
    return along_axis, (spread, spread, ties, ties), full


HELPER_CASES = ([("python",) + c for c in _with_axes(GRID)]
                + [("numba",) + c for c in _with_axes(NUMBA_GRID)])


@pytest.mark.parametrize("ties", [False, True], ids=["normal", "ties"])
@pytest.mark.parametrize("mode,rank,dtype,layout,axis", HELPER_CASES, ids=_id)
def test_array_helpers(mode, rank, dtype, layout, axis, ties):
    x = make(SHAPES[rank], dtype, layout, seed=rank, ties=ties)
    x_before = x.copy()
    got = run_helpers(mode, x, axis)
    for names, outs, wants in zip(NAMES, got, reference(x, axis)):
        assert len(outs) == len(names)
        for name, out, want in zip(names, outs, wants):
            check(out, want, dtype, name)
    for out in got[1] + got[2][:-1]:  # new, writable arrays, not views of x
        assert out.flags.writeable and not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("mode", ["python", "numba"])
def test_axis_out_of_range_raises(mode):
    rank, dtype, layout = NUMBA_GRID[-1]
    x = make(SHAPES[rank], dtype, layout)
    for axis in (rank, -rank - 1):
        with pytest.raises(ValueError):
            RUNNERS[mode](x, axis, np.sum(x), np.max(x))


@pytest.mark.parametrize("mode", ["python", "numba"])
def test_nan_propagates_through_max_and_min(mode):
    x = make((4, 5), np.float64, "C")  # argument types of NUMBA_GRID
    x[1, 2] = np.nan
    along_axis, backward, _ = run_helpers(mode, x, 1)
    for name, out in zip(NAMES[0][4:8], along_axis[4:8]):
        out = out.reshape(4)
        assert np.isnan(out[1]) and np.all(np.isfinite(out[[0, 2, 3]])), name
    ties = backward[3]
    assert np.all(ties[1] == 0)  # nothing equals NaN: no gradient, not NaN
    np.testing.assert_allclose(ties[[0, 2, 3]].sum(axis=1), 1.0)


def test_scalar_results_keep_dtype_in_python():
    x = make((7,), np.float32, "C")
    for name in ("sum_over", "mean_over", "max_over", "min_over"):
        assert isinstance(getattr(rt, name)(x, -1), np.float32)
    assert isinstance(rt.logsumexp_all(x), np.float32)


@numba.njit
def numba_tie_mask(x, m, axis):
    return rt.tie_mask(x, m, axis)


@pytest.mark.parametrize("run", [rt.tie_mask, numba_tie_mask], ids=["python", "numba"])
def test_tie_mask_by_hand(run):
    # Argument types of NUMBA_GRID, compiled by test_array_helpers.
    x = as_layout([[1, 3, 3], [2, 2, 2], [5, 0, -1], [5, 5, 0]], np.float64, "C")
    want_rows = [[0, .5, .5], [1 / 3, 1 / 3, 1 / 3], [1, 0, 0], [.5, .5, 0]]
    want_cols = [[0, 0, 1], [0, 0, 0], [.5, 0, 0], [.5, 1, 0]]
    for axis, want in ((1, want_rows), (-2, want_cols)):
        for keep in (False, True):
            got = run(x, np.max(x, axis, keepdims=keep), axis)
            check(got, np.array(want), np.float64)
    xmin = as_layout([4, -1, 2, -1], np.float32, "strided")
    check(run(xmin, np.min(xmin), 0), np.array([0, .5, 0, .5]), np.float32)


# ---------------------------------------------------------------------------
# Numerical stability for inputs of magnitude 1e3
# ---------------------------------------------------------------------------

def _lse_by_hand(v):
    """logsumexp of a 1-D slice in plain Python floats, shifted by the max."""
    m = max(v)
    return m + math.log(math.fsum(math.exp(t - m) for t in v))


@pytest.mark.parametrize("rank,dtype,layout", NUMBA_GRID, ids=_id)
@pytest.mark.parametrize("mode", ["python", "numba"])
def test_softmax_family_large_inputs(mode, rank, dtype, layout):
    rng = np.random.default_rng(3)
    shape = SHAPES[rank]
    values = 1e3 * rng.choice([-1.0, 1.0], shape) + rng.standard_normal(shape)
    z = as_layout(values, dtype, layout)
    z64 = z.astype(np.float64)
    for axis in (0, -1):
        lse = np.expand_dims(np.apply_along_axis(_lse_by_hand, axis, z64), axis)
        along_axis, _, full = run_helpers(mode, z, axis)
        for name, out, want in zip(NAMES[0][-3:], along_axis[-3:], (np.exp(z64 - lse), z64 - lse, lse)):
            assert np.all(np.isfinite(out)), name
            check(out, want, dtype, name)
    lse = _lse_by_hand(z64.ravel().tolist())
    for name, out, want in zip(NAMES[2][-3:], full[-3:], (np.exp(z64 - lse), z64 - lse, lse)):
        assert np.all(np.isfinite(out)), name
        check(out, want, dtype, name)


# ---------------------------------------------------------------------------
# unbroadcast
# ---------------------------------------------------------------------------

UNBROADCAST_CASES = [  # (g shape, like shape, axes of g summed over)
    ((4, 5), (4, 5), ()),
    ((3, 4, 5), (4, 5), (0,)),
    ((3, 4, 5), (1, 5), (0, 1)),
    ((3, 4, 5), (3, 1, 1), (1, 2)),
    ((3, 4, 5), (1, 4, 1), (0, 2)),
    ((3, 4, 5), (5,), (0, 1)),
    ((3, 4, 5), (1,), (0, 1, 2)),
    ((2, 3, 4, 5), (3, 1, 5), (0, 2)),
    ((3, 1, 5), (3, 1, 5), ()),
    ((3, 1, 5), (1, 1, 5), (0,)),
    # 1-D and 2-D g
    ((4, 5), (5,), (0,)),
    ((4, 5), (1, 5), (0,)),
    ((4, 5), (4, 1), (1,)),
    ((4, 5), (1, 1), (0, 1)),
    ((4, 5), (1,), (0, 1)),
    ((1, 5), (5,), (0,)),
    ((7,), (1,), (0,)),
]
SMALL_UNBROADCAST = UNBROADCAST_CASES[-7:]


def reference_unbroadcast(g, like_shape, axes):
    return np.sum(g, axis=axes).reshape(like_shape)


@numba.njit
def numba_unbroadcast(g, like):
    return rt.unbroadcast(g, like)


def _unbroadcast_numba_cases():
    """Every case for C float64 g, and a few for strided float32 g."""
    cases = [case + (np.float64, "C") for case in UNBROADCAST_CASES]
    cases += [case + (np.float32, "strided") for case in UNBROADCAST_CASES[1:5] + SMALL_UNBROADCAST]
    return cases


@pytest.mark.parametrize("g_shape,like_shape,axes", UNBROADCAST_CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=_id)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_unbroadcast_python(g_shape, like_shape, axes, dtype, layout):
    g = make(g_shape, dtype, layout, seed=4)
    like = np.zeros(like_shape, np.float64)  # like's dtype must not matter
    got = rt.unbroadcast(g, like)
    check(got, reference_unbroadcast(g, like_shape, axes), dtype)
    if g_shape == like_shape:
        assert got is g


@pytest.mark.parametrize("g_shape,like_shape,axes,dtype,layout", _unbroadcast_numba_cases(), ids=_id)
def test_unbroadcast_numba(g_shape, like_shape, axes, dtype, layout):
    g = make(g_shape, dtype, layout, seed=4)
    like = np.zeros(like_shape, dtype)
    got = numba_unbroadcast(g, like)
    check(got, reference_unbroadcast(g, like_shape, axes), dtype)
    if g_shape == like_shape:
        assert np.shares_memory(got, g)


@numba.njit
def numba_unbroadcast_to(g, shape):
    return rt.unbroadcast_to(g, shape)


@pytest.mark.parametrize("run", [rt.unbroadcast_to, numba_unbroadcast_to], ids=["python", "numba"])
def test_unbroadcast_to_a_shape(run):
    for g_shape, like_shape, axes in UNBROADCAST_CASES:
        g = make(g_shape, np.float64, "C", seed=5)
        check(run(g, like_shape), reference_unbroadcast(g, like_shape, axes), np.float64)


# ---------------------------------------------------------------------------
# Accumulating helpers: max-reduction ties and outer products
# ---------------------------------------------------------------------------

@numba.njit
def numba_tie_share_all(g, x, m):
    return rt.tie_share_all(g, x, m)


@numba.njit
def numba_add_tie_share_all(d, g, x, m):
    rt.add_tie_share_all(d, g, x, m)
    return d


@numba.njit
def numba_extremes(x):
    return rt.max_all(x), rt.min_all(x)


@pytest.mark.parametrize("values", [[3.0, -1.0, 7.5, 7.5, 0.0], [np.nan, 1.0, 2.0], [1.0, np.nan, 2.0],
                                    [1.0, 2.0, np.nan], [-np.inf, np.nan, np.inf], [2.0, 2.0], [4.0],
                                    [-np.inf, -np.inf], [5.0, -3.0, np.inf, 1.0]],
                         ids=lambda v: str(v))
@pytest.mark.parametrize("layout", ["C", "strided"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_all_and_min_all_compiled_agree_with_numpy(values, layout, dtype):
    """The compiled scan (selects and a NaN flag) gives np.max / np.min, NaN included."""
    x = as_layout(values, dtype, layout if len(values) > 1 else "C")   # one entry: no stride
    got = numba_extremes(x)
    np.testing.assert_array_equal(got, (np.max(x), np.min(x)))


@pytest.mark.parametrize("mode", ["python", "numba"])
def test_tie_share_all_equals_spread_times_mask(mode):
    share = rt.tie_share_all if mode == "python" else numba_tie_share_all
    add = rt.add_tie_share_all if mode == "python" else numba_add_tie_share_all
    for values in ([1.0, 3.0, 3.0, -2.0], [2.0, 2.0, 2.0, 2.0], [0.5, np.nan, 4.0, 1.0]):
        for layout in ("C", "strided"):
            x = as_layout(values, np.float64, layout)
            m = np.max(x)
            want = rt.spread_all(1.5, x) * rt.tie_mask_all(x, m)
            np.testing.assert_array_equal(share(1.5, x, m), want)
            d = np.arange(4.0)
            add(d, 1.5, x, m)
            np.testing.assert_array_equal(d, np.arange(4.0) + want)
    x = as_layout([[1.0, 5.0], [5.0, 0.0]], np.float64, "strided")
    d = np.ones((2, 2))
    add(d, 2.0, x, 5.0)
    np.testing.assert_array_equal(d, [[1.0, 2.0], [2.0, 1.0]])
    x = np.array([1.0, 3.0])     # a non-finite adjoint still reaches every entry, as g * 0
    assert np.isnan(share(np.inf, x, 3.0)[0]) and share(np.inf, x, 3.0)[1] == np.inf


@numba.njit
def numba_add_outer(d, x, y):
    rt.add_outer(d, x, y)
    return d


@pytest.mark.parametrize("run", [rt.add_outer, numba_add_outer], ids=["python", "numba"])
def test_add_outer_accumulates_in_place(run):
    x, y = np.array([1.0, -2.0, 0.5]), as_layout([3.0, 4.0], np.float64, "strided")
    d = np.ones((3, 2))
    run(d, x, y)
    np.testing.assert_array_equal(d, 1.0 + np.outer(x, y))
    d = np.ones((3, 2)).T.copy().T      # F-ordered
    run(d, x, y)
    np.testing.assert_array_equal(d, 1.0 + np.outer(x, y))


@numba.njit
def numba_vecmat(x, a):
    return rt.vecmat(x, a)


@numba.njit
def numba_matvec(a, x):
    return rt.matvec(a, x)


def as_vecmat(run):
    return lambda x, a: run(x, a)


def as_matvec(run):
    """x @ a computed as a.T @ x (with a.T C-contiguous unless `a` is strided)."""
    return lambda x, a: run(np.ascontiguousarray(a.T) if a.flags.c_contiguous else a.T, x)


@numba.njit
def numba_vecmat_into(out, x, a):
    return rt.vecmat_into(out, x, a)


@numba.njit
def numba_matvec_into(out, a, x):
    return rt.matvec_into(out, a, x)


def into_buffer(run):
    """run(out, ...) given a buffer of another size: it must allocate the result."""
    return lambda *args: run(np.full(7, np.nan, args[0].dtype), *args)


PRODUCTS = {
    "vecmat-python": as_vecmat(rt.vecmat), "vecmat-numba": as_vecmat(numba_vecmat),
    "matvec-python": as_matvec(rt.matvec), "matvec-numba": as_matvec(numba_matvec),
    "vecmat_into-numba": as_vecmat(into_buffer(numba_vecmat_into)),
    "matvec_into-numba": as_matvec(into_buffer(numba_matvec_into)),
    "vecmat_into-python": as_vecmat(into_buffer(rt.vecmat_into)),
}


@pytest.mark.parametrize("run", PRODUCTS.values(), ids=PRODUCTS.keys())
def test_small_products_loop_or_blas(run):
    rng = np.random.default_rng(8)
    for n, m in ((3, 5), (9, 7), (100, 100)):   # loops below VECMAT_LOOP_SIZE entries, BLAS above
        x, a = rng.normal(size=n), rng.normal(size=(n, m))
        np.testing.assert_allclose(run(x, a), x @ a, rtol=1e-12, atol=1e-12)
    for layout in ("C", "strided"):
        a = as_layout(rng.normal(size=(3, 5)), np.float32, layout)
        x = rng.normal(size=3).astype(np.float32)
        got = run(x, a)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, x @ a, rtol=2e-5, atol=2e-5)
    with pytest.raises(ValueError):
        run(np.ones(4), np.ones((3, 5)))


@pytest.mark.parametrize("dtype", DTYPES, ids=_id)
def test_products_into_a_buffer_of_the_right_size_reuse_it(dtype):
    rng = np.random.default_rng(9)
    x, a = rng.normal(size=3).astype(dtype), rng.normal(size=(3, 5)).astype(dtype)
    out = np.full(5, np.nan, dtype)
    got = numba_vecmat_into(out, x, a)
    assert got is out or np.shares_memory(got, out)
    np.testing.assert_allclose(got, x @ a, rtol=2e-5)
    out = np.full(3, np.nan, dtype)
    got = numba_matvec_into(out, a, rng.normal(size=5).astype(dtype))
    assert np.shares_memory(got, out) and not np.isnan(got).any()


def python_extremes_all(x):
    return rt.max_all(x), rt.min_all(x)


numba_extremes_all = numba.njit(python_extremes_all)


@pytest.mark.parametrize("run", [python_extremes_all, numba_extremes_all], ids=["python", "numba"])
@pytest.mark.parametrize("x", [
    np.array([0.5, 2.0, -1.0, 2.0]), np.array([3.0]), np.array([np.nan, 1.0, 2.0]),
    np.array([1.0, np.nan, -np.inf]), np.array([-np.inf, np.inf]),
    np.array([4.0, -2.0, 7.0], np.float32), np.array([3, -8, 5]), np.arange(12.0).reshape(3, 4),
], ids=str)
def test_max_all_and_min_all_equal_numpy(run, x):
    got_max, got_min = run(x)
    np.testing.assert_array_equal([got_max, got_min], [np.max(x), np.min(x)])
    if run is python_extremes_all:    # (numba boxes a float32 scalar as a Python float)
        assert np.asarray(got_max).dtype == np.max(x).dtype


def test_max_all_of_empty_array_raises():
    with pytest.raises(ValueError):
        numba_extremes_all(np.zeros(0))


# ---------------------------------------------------------------------------
# Where an array equals its extreme: push_extremes, tie_share_at
# ---------------------------------------------------------------------------

def python_extremes_share(x, m, g):
    tape = np.zeros(x.size + 4)
    top = push_extremes(tape, 1, x, m)
    at, start = pop_extremes(tape, top)
    d = np.ones(x.size)
    rt.add_tie_share_at(d, g, tape, at)
    return rt.tie_share_at(g, tape, at), d, top, start


numba_extremes_share = numba.njit(python_extremes_share)


@pytest.mark.parametrize("run", [python_extremes_share, numba_extremes_share], ids=["python", "numba"])
@pytest.mark.parametrize("x", [[0.5, 2.0, -1.0], [2.0, 0.5, 2.0, 2.0], [1.0], [np.nan, 1.0]], ids=str)
@pytest.mark.parametrize("g", [1.5, np.inf, np.nan], ids=str)
def test_tie_share_at_equals_tie_share_all(run, x, g):
    x = np.array(x)
    m = np.max(x)
    share, d, top, start = run(x, m, g)
    expected = rt.tie_share_all(g, x, m)
    np.testing.assert_array_equal(share, expected)
    np.testing.assert_array_equal(d, 1.0 + expected)
    # size, count, positions, length
    assert start == 1 and top == 1 + 2 + np.count_nonzero(x == m) + 1


# ---------------------------------------------------------------------------
# Scalar helpers: reserve, range_last, as_dtype_of
# ---------------------------------------------------------------------------

@numba.njit
def numba_reserve(tape, n):
    return rt.reserve(tape, n)


@pytest.mark.parametrize("run", [rt.reserve, numba_reserve], ids=["python", "numba"])
def test_reserve(run):
    tape = np.arange(10.0)
    assert run(tape, 10) is tape
    assert run(tape, 3) is tape
    for n, size in ((11, 64), (100, 100)):
        grown = run(tape, n)
        assert grown.dtype == np.float64 and grown.shape == (size,)
        np.testing.assert_array_equal(grown[:10], tape)
    big = np.zeros(50)
    assert run(big, 51).shape == (100,)
    assert run(np.zeros(0), 1).shape == (64,)


@numba.njit
def numba_range_last(a, b, s):
    return rt.range_last(a, b, s)


@pytest.mark.parametrize("run", [rt.range_last, numba_range_last], ids=["python", "numba"])
def test_range_last(run):
    for a, b, s in itertools.product(range(-4, 5), range(-4, 5), (-3, -2, -1, 1, 2, 3)):
        r = range(a, b, s)
        assert run(a, b, s) == (r[-1] if len(r) else a - s), (a, b, s)


@numba.njit
def numba_as_dtype_of(g, like):
    return rt.as_dtype_of(g, like)


@pytest.mark.parametrize("run", [rt.as_dtype_of, numba_as_dtype_of], ids=["python", "numba"])
def test_as_dtype_of(run):
    g64, g32 = np.linspace(0, 1, 5), np.linspace(0, 1, 5).astype(np.float32)
    like32, like64 = np.zeros(2, np.float32), np.zeros((2, 2))
    got = run(g64, like32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, g64, rtol=1e-7)
    got = run(g32, like64)
    assert got.dtype == np.float64 and np.array_equal(got, g32)
    same = run(g64, like64)
    assert np.shares_memory(same, g64)
    if run is rt.as_dtype_of:
        assert same is g64
        assert isinstance(run(1.5, like32), np.float32)
    assert run(1.5, like32) == 1.5


# ---------------------------------------------------------------------------
# Caching: helpers inside numba.njit(cache=True)
# ---------------------------------------------------------------------------

def cached_kernel(x, tape):
    """Uses helpers of every kind; compiled with cache=True by the test."""
    mk = rt.max_over_keep(x, -1)
    out = (rt.spread(rt.sum_over(x, 0), x, 0), rt.tie_mask(x, mk, -1),
           rt.as_dtype_of(rt.softmax_over(x, 1), x))
    tape = rt.reserve(tape, x.size)
    tape[0] = rt.range_last(0, x.shape[0], 1)
    return out, tape


def test_helpers_under_njit_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    x = make((4, 5), np.float64, "C")  # argument types compiled above
    tape = np.zeros(4)
    first = numba.njit(cache=True)(cached_kernel)
    out1, tape1 = first(x, tape)
    assert first.stats.cache_misses and any(tmp_path.rglob("*.nbi"))
    second = numba.njit(cache=True)(cached_kernel)  # a fresh dispatcher loads from disk
    out2, tape2 = second(x, tape)
    assert second.stats.cache_hits and not second.stats.cache_misses
    want, want_tape = cached_kernel(x, tape)
    for a, b, c in zip(out1, out2, want):
        check(a, c, np.float64)
        np.testing.assert_array_equal(a, b)
    # a grown tape keeps the entries it had (the rest is not initialised: never read unwritten)
    np.testing.assert_array_equal(tape1[:tape.size], want_tape[:tape.size])
    np.testing.assert_array_equal(tape2[:tape.size], want_tape[:tape.size])
    assert tape1.shape == want_tape.shape == (64,) and tape1[0] == 3


# ---------------------------------------------------------------------------
# reversed_cumsum: the adjoint of np.cumsum
# ---------------------------------------------------------------------------

@numba.njit
def numba_reversed_cumsum(g, x):
    return rt.reversed_cumsum(g, x)


@pytest.mark.parametrize("run", [rt.reversed_cumsum, numba_reversed_cumsum], ids=["python", "numba"])
@pytest.mark.parametrize("shape", [(5,), (2, 3), (1,)], ids=str)
def test_reversed_cumsum_is_the_transpose_of_cumsum(run, shape):
    x = np.arange(float(np.prod(shape))).reshape(shape)
    g = np.linspace(-1.0, 2.0, x.size)
    jacobian = np.tril(np.ones((x.size, x.size)))          # d cumsum(x)[i] / d x[j] = [j <= i]
    np.testing.assert_allclose(run(g, x), (jacobian.T @ g).reshape(shape), rtol=1e-14)


KERNEL_USER = '''
import numpy as np, srcdiff

def row_sums(x):
    return np.sum(np.sum(x, axis=1) ** 2)

srcdiff.grad(row_sums)(np.ones((3, 4)))
'''


def test_runtime_kernels_are_compiled_into_numbas_disk_cache(tmp_path):
    """A kernel a gradient calls (here the axis sum's) is stored by numba's cache, so a new
    gradient in a new process loads it instead of compiling it; the kernel taking a
    function (the max scan) is not, since numba cannot store its signature."""
    program = tmp_path / "kernel_user.py"
    program.write_text(KERNEL_USER)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               SRCDIFF_CACHE_DIR=str(tmp_path / "srcdiff"))
    run = subprocess.run([sys.executable, str(program)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    cached = [p.name for p in (tmp_path / "numba").rglob("*.nbi")]
    assert any(name.startswith("runtime._sum_k") for name in cached), cached
    assert not any("_extreme_1d" in name for name in cached), cached


@numba.njit
def _filled(x, a, b):
    rows = np.empty(a.shape[1])
    rt.vecmat_fill(rows, x, a)
    columns = np.empty(b.shape[0])
    rt.matvec_fill(columns, b, x)
    return rows, columns


@pytest.mark.parametrize("n", [3, 200])      # a loop of its own below the BLAS size, BLAS above
def test_the_fill_helpers_write_the_product_into_their_buffer(n):
    rng = np.random.default_rng(n)
    x, a, b = rng.standard_normal(n), rng.standard_normal((n, 4)), rng.standard_normal((5, n))
    rows, columns = _filled(x, a, b)
    np.testing.assert_allclose(rows, x @ a, rtol=1e-12)
    np.testing.assert_allclose(columns, b @ x, rtol=1e-12)


def test_a_fill_into_a_buffer_of_another_length_raises():
    @numba.njit
    def wrong(x, a):
        out = np.empty(a.shape[1] + 1)
        rt.vecmat_fill(out, x, a)
        return out
    with pytest.raises(ValueError, match="does not fit"):
        wrong(np.ones(3), np.ones((3, 2)))
