"""The vectorised tanh compiled code calls for arrays: NumPy's values to a few units in
the last place, NumPy's dtypes and shapes, and a loop LLVM does vectorise."""
import re

import numba
import numpy as np
import pytest

import srcdiff
from srcdiff import runtime


@numba.njit
def compiled_tanh(x):
    return runtime.tanh(x)


def ulps(got, want):
    """|got - want| in units in the last place of want."""
    return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want).astype(want.dtype))


def test_tanh_is_within_three_ulps_of_numpy_everywhere():
    x = np.concatenate([np.linspace(-30.0, 30.0, 600_001), np.geomspace(1e-300, 2.0, 20_001),
                        -np.geomspace(1e-300, 2.0, 20_001), [0.34999, 0.35, 0.35001, 19.99, 20.0]])
    got = compiled_tanh(x)
    assert ulps(got, np.tanh(x)).max() <= 3.0
    assert np.all(np.abs(got) <= 1.0)
    assert np.all(np.sign(got) == np.sign(x))


def test_tanh_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308])
    got = compiled_tanh(x)
    want = np.tanh(x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("make", [
    lambda r: r.standard_normal((4, 6)),
    lambda r: r.standard_normal((4, 6)).T,                  # not contiguous
    lambda r: r.standard_normal(13)[::3],                   # strided
    lambda r: r.standard_normal((2, 3, 4)),
    lambda r: np.array(0.7),                                # zero dimensions
    lambda r: np.zeros((0, 3)),
], ids=["matrix", "transposed", "strided", "rank3", "0d", "empty"])
def test_tanh_keeps_shape_and_matches_numpy(make):
    x = np.asarray(make(np.random.default_rng(0)) * 3.0)
    got = compiled_tanh(x)
    assert got.shape == x.shape and got.dtype == x.dtype
    np.testing.assert_allclose(got, np.tanh(x), rtol=1e-15, atol=0)


def test_tanh_float32_stays_float32_and_rounds_like_numpy():
    x = np.linspace(-12.0, 12.0, 100_001).astype(np.float32)
    got = compiled_tanh(x)
    assert got.dtype == np.float32
    assert ulps(got, np.tanh(x)).max() <= 1.0


def test_tanh_of_integers_and_numbers_is_numpys():
    np.testing.assert_array_equal(compiled_tanh(np.arange(4)), np.tanh(np.arange(4)))
    assert compiled_tanh(0.25) == np.tanh(0.25)
    assert runtime.tanh(0.25) == np.tanh(0.25)              # without compiling: NumPy's


def test_tanh_loop_is_vectorised():
    """A call, a branch or a division check in the kernel would make LLVM keep it scalar,
    four to eight times slower."""
    compiled_tanh(np.zeros(8))
    llvm = compiled_tanh.inspect_llvm(compiled_tanh.signatures[0])      # with the kernel's
    assert re.search(r"<\d+ x double>", llvm)
    assert not re.search(r"call [^\n]*@tanh\b", llvm)


def rnn_loss(W, b, xs):
    h = np.zeros(W.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t] + b)
    return np.sum(h * h)


def test_generated_code_calls_it_for_arrays_only():
    source = srcdiff.grad(rnn_loss, wrt=("W", "b")).source_for(
        np.eye(3), np.zeros(3), np.ones((4, 3)))
    code = [line for line in source.splitlines() if not line.strip().startswith("#")]
    assert any("= tanh(" in line for line in code)
    assert not any("np.tanh(" in line for line in code)

    def scalar(x):
        return np.tanh(x) * 2.0
    assert "np.tanh(x)" in srcdiff.grad(scalar).source_for(0.5)


@pytest.mark.parametrize("compile", [True, False], ids=["compiled", "python"])
def test_rnn_gradient_through_it_matches_finite_differences(compile):
    r = np.random.default_rng(3)
    W, b, xs = 0.8 * r.standard_normal((5, 5)), 0.1 * r.standard_normal(5), r.standard_normal((7, 5))
    srcdiff.check_grad(rnn_loss, W, b, xs, wrt=("W", "b"), compile=compile)
