"""Shared fixtures and helpers for the srcdiff test suite.

Every test session compiles into its own, fresh cache folder (SRCDIFF_CACHE_DIR),
so a stale cache from an earlier run or from the user's ~/.cache can never hide
a bug. The autouse session fixture below sets it before the first test runs;
nothing is compiled earlier (collecting the test modules only lowers functions).
"""
import os

import numpy as np
import pytest

import srcdiff


@pytest.fixture(scope="session", autouse=True)
def srcdiff_cache_dir(tmp_path_factory):
    """A fresh srcdiff cache folder for the whole session (set before any compile)."""
    path = tmp_path_factory.mktemp("srcdiff-cache")
    old = os.environ.get("SRCDIFF_CACHE_DIR")
    os.environ["SRCDIFF_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SRCDIFF_CACHE_DIR", None)
    else:
        os.environ["SRCDIFF_CACHE_DIR"] = old


def as_tuple(result, wrt):
    """The gradient(s) returned for `wrt`, always as a tuple."""
    return tuple(result) if isinstance(wrt, (tuple, list)) else (result,)


def assert_close_relative(got, expected, rtol, what=""):
    """|got - expected| <= rtol * max(|expected|) entrywise (relative to the gradient's scale)."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1e-300)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def assert_grad_matches_fd(f, args, wrt=0, rtol=1e-5, atol=1e-7, eps=None, agree_rtol=1e-10):
    """Check srcdiff's gradient of `f` at `args` against central finite differences.

    Runs `srcdiff.check_grad` twice, once numba-compiled and once with
    `compile=False` (the same generated source run as plain NumPy), and asserts
    that the compiled and uncompiled gradients agree to `agree_rtol` relative
    (1e-10 by default; callers pass a float32-sized value for float32 inputs).
    Returns the compiled gradients as a tuple.
    """
    args = tuple(args)
    srcdiff.check_grad(f, *args, wrt=wrt, eps=eps, rtol=rtol, atol=atol, compile=True)
    srcdiff.check_grad(f, *args, wrt=wrt, eps=eps, rtol=rtol, atol=atol, compile=False)
    compiled = as_tuple(srcdiff.grad(f, wrt=wrt, compile=True)(*args), wrt)
    plain = as_tuple(srcdiff.grad(f, wrt=wrt, compile=False)(*args), wrt)
    assert len(compiled) == len(plain)
    for k, (c, p) in enumerate(zip(compiled, plain)):
        assert np.shape(c) == np.shape(p), f"gradient {k}: compiled shape {np.shape(c)} != {np.shape(p)}"
        assert_close_relative(c, p, agree_rtol, what=f"compiled vs compile=False, gradient {k}")
    return compiled
