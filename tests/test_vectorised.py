"""The vectorised tanh, exp and log compiled code calls for arrays: NumPy's values to a
few units in the last place, NumPy's dtypes, shapes and memory order, and loops LLVM does
vectorise."""
import re

import numba
import numpy as np
import pytest

import srcdiff
from srcdiff import runtime
from srcdiff.vectorised import FEW, _exp_loop, _log_loop, _tanh_loop


@numba.njit
def compiled_tanh(x):
    return runtime.tanh(x)


@numba.njit
def compiled_exp(x):
    return runtime.exp(x)


@numba.njit
def compiled_log(x):
    return runtime.log(x)


KERNELS = [(compiled_tanh, np.tanh), (compiled_exp, np.exp), (compiled_log, np.log)]
KERNEL_IDS = ["tanh", "exp", "log"]


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


def test_exp_is_within_one_ulp_of_numpy_down_to_the_subnormals():
    x = np.concatenate([np.linspace(-745.2, 709.8, 1_000_001), np.linspace(-3.0, 3.0, 100_001),
                        np.geomspace(1e-300, 1.0, 10_001), -np.geomspace(1e-300, 1.0, 10_001)])
    with np.errstate(over="ignore"):
        want = np.exp(x)
    got = compiled_exp(x)
    normal = np.isfinite(want) & (want >= np.finfo(np.float64).tiny)
    assert ulps(got[normal], want[normal]).max() <= 1.0
    subnormal = np.isfinite(want) & ~normal
    assert np.abs(got[subnormal] - want[subnormal]).max() <= 5e-324
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])


def test_log_is_within_one_ulp_of_numpy_from_the_subnormals_up():
    x = np.concatenate([np.geomspace(5e-324, 1.7e308, 1_000_001), np.linspace(0.5, 2.0, 100_001),
                        1.0 + np.geomspace(1e-16, 0.1, 10_001), 1.0 - np.geomspace(1e-16, 0.1, 10_001)])
    want = np.log(x)
    got = compiled_log(x)
    assert ulps(got[want != 0], want[want != 0]).max() <= 1.0
    assert np.all(got[want == 0] == 0)


@pytest.mark.parametrize("kernel, numpy_function", KERNELS, ids=KERNEL_IDS)
def test_special_values(kernel, numpy_function):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308, -1e308,
                  709.79, -745.14, 709.78, -745.13, 1.0, -1.0, 2.0 ** -1060, 2.0 ** 1023])
    got = kernel(x)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        want = numpy_function(x)
    np.testing.assert_allclose(got, want, rtol=7e-16, atol=0)     # infs and NaNs where NumPy's
    signed = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(got[signed]), np.signbit(want[signed]))


@pytest.mark.parametrize("kernel, numpy_function", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("make", [
    lambda r: r.standard_normal((4, 6)),
    lambda r: r.standard_normal((4, 6)).T,                  # not contiguous
    lambda r: r.standard_normal(13)[::3],                   # strided
    lambda r: r.standard_normal((2, 3, 4)),
    lambda r: np.array(0.7),                                # zero dimensions
    lambda r: np.zeros((0, 3)),
], ids=["matrix", "transposed", "strided", "rank3", "0d", "empty"])
def test_keeps_shape_and_matches_numpy(make, kernel, numpy_function):
    x = np.asarray(make(np.random.default_rng(0)) * 3.0)
    got = kernel(x)
    assert np.shape(got) == x.shape and np.asarray(got).dtype == x.dtype
    with np.errstate(invalid="ignore"):                     # log of a negative
        np.testing.assert_allclose(got, numpy_function(x), rtol=1e-15, atol=0)


@pytest.mark.parametrize("kernel, numpy_function", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("shape", [(4, 6), (3, 4, 5)], ids=["matrix", "rank3"])
def test_fortran_order_stays_fortran_order(kernel, numpy_function, shape):
    """As numba's own ufuncs: a loop rebinding `A = np.exp(-A * A)` for a Fortran-ordered
    (or transposed) A would otherwise hold two memory orders, which numba cannot compile."""
    x = np.asfortranarray(np.random.default_rng(2).uniform(0.1, 3.0, shape))
    got = kernel(x)
    assert got.flags.f_contiguous
    np.testing.assert_allclose(got, numpy_function(x), rtol=1e-15, atol=0)


def rebinds_in_a_loop(A):
    for _ in range(3):
        A = np.exp(-A * A)
    return np.sum(np.log(A + 1.0) + np.tanh(A))


@pytest.mark.parametrize("order", ["C", "F", "transposed"])
def test_a_loop_rebinding_an_array_of_any_order_compiles(order):
    A = 0.5 * np.random.default_rng(5).standard_normal((4, 5))
    A = {"C": A, "F": np.asfortranarray(A), "transposed": A.T}[order]
    srcdiff.check_grad(rebinds_in_a_loop, A)


@pytest.mark.parametrize("kernel, numpy_function", KERNELS, ids=KERNEL_IDS)
def test_float32_stays_float32_and_is_correctly_rounded(kernel, numpy_function):
    x = np.linspace(-87.0, 88.0, 100_001).astype(np.float32)
    got = kernel(x)
    assert got.dtype == np.float32
    with np.errstate(invalid="ignore", divide="ignore"):
        want = numpy_function(x.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kernel, numpy_function", KERNELS, ids=KERNEL_IDS)
def test_integers_numbers_few_entries_and_python_are_numpys(kernel, numpy_function):
    np.testing.assert_array_equal(kernel(np.arange(1, 5)), numpy_function(np.arange(1, 5)))
    assert kernel(0.25) == numpy_function(0.25)
    few = np.linspace(0.5, 2.0, FEW - 1)                     # the C library's: no loop set-up
    numbas = numba.njit(lambda x: numpy_function(x))
    np.testing.assert_array_equal(kernel(few), numbas(few))
    x = np.random.default_rng(1).uniform(0.1, 4.0, (50, 3))
    python = getattr(runtime, numpy_function.__name__)
    np.testing.assert_array_equal(python(x), numpy_function(x))     # without compiling


@pytest.mark.parametrize("loop", [_tanh_loop, _exp_loop, _log_loop], ids=KERNEL_IDS)
def test_loop_is_vectorised(loop):
    """A call, a branch or a division check in the kernel would make LLVM keep it scalar,
    four to eight times slower."""
    loop = numba.njit(error_model="numpy")(loop)      # as registered for compiled code
    loop(np.zeros(16), np.empty(16))
    llvm = loop.inspect_llvm(loop.signatures[0])
    assert re.search(r"<\d+ x double>", llvm)


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


def softmax_loss(W, X, y):
    z = X @ W
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    p = e / np.sum(e, axis=1, keepdims=True)
    return -np.sum(np.log(np.sum(p * y, axis=1)))


@pytest.mark.parametrize("compile", [True, False], ids=["compiled", "python"])
def test_softmax_gradient_through_exp_matches_finite_differences(compile):
    r = np.random.default_rng(4)
    W, X = r.standard_normal((4, 3)), r.standard_normal((6, 4))
    y = np.eye(3)[r.integers(0, 3, 6)]
    assert "= exp(" in srcdiff.grad(softmax_loss).source_for(W, X, y)
    srcdiff.check_grad(softmax_loss, W, X, y, compile=compile)


@pytest.mark.parametrize("compile", [True, False], ids=["compiled", "python"])
def test_rnn_gradient_through_it_matches_finite_differences(compile):
    r = np.random.default_rng(3)
    W, b, xs = 0.8 * r.standard_normal((5, 5)), 0.1 * r.standard_normal(5), r.standard_normal((7, 5))
    srcdiff.check_grad(rnn_loss, W, b, xs, wrt=("W", "b"), compile=compile)
