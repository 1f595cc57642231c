"""The public API: grad / value_and_grad / check_grad, their options and return types,
and end-to-end gradients of small models against hand-written backward passes."""
import math
import os

import numpy as np
import pytest

import srcdiff
from srcdiff.check import GradientCheckError, _report, extrapolated, numeric_gradient

from conftest import assert_close_relative, assert_grad_matches_fd
from diff_models import loss, mlp_inputs, neuron, seed_neuron_inputs

MODES = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])


# ---- decorator and functional forms --------------------------------------------------------
@srcdiff.grad
def deco_bare(x, y):
    return np.sum(np.sin(x) * y)


@srcdiff.grad(wrt=0)
def deco_args(x, y):
    return np.sum(np.sin(x) * y)


def plain_form(x, y):
    return np.sum(np.sin(x) * y)


@srcdiff.value_and_grad(wrt=(0, 1), compile=False)
def deco_value_args(x, y):
    return np.sum(np.sin(x) * y)


@srcdiff.value_and_grad
def deco_value_bare(x, y):
    return np.sum(np.sin(x) * y)


def test_decorator_with_and_without_arguments_and_functional_form_agree():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=5), rng.normal(size=5)
    expected = np.cos(x) * y
    bare, args, functional = deco_bare(x, y), deco_args(x, y), srcdiff.grad(plain_form)(x, y)
    np.testing.assert_array_equal(bare, args)
    np.testing.assert_array_equal(bare, functional)
    np.testing.assert_allclose(bare, expected, rtol=1e-12)
    assert isinstance(deco_bare, srcdiff.Gradient)
    assert deco_bare.__name__ == "deco_bare" and deco_bare.__wrapped__.__name__ == "deco_bare"
    value, (dx, dy) = deco_value_args(x, y)
    assert value == pytest.approx(plain_form(x, y), rel=1e-12)
    np.testing.assert_allclose(dx, expected, rtol=1e-12)
    np.testing.assert_allclose(dy, np.sin(x), rtol=1e-12)
    value, dx = deco_value_bare(x, y)
    assert value == pytest.approx(plain_form(x, y), rel=1e-12)
    np.testing.assert_array_equal(dx, bare)


# ---- wrt ---------------------------------------------------------------------------------------
def three(a, b, c):
    return a * b + np.sin(c) * a + b * c * c


def three_partials(a, b, c):
    return {"a": b + math.sin(c), "b": a + c * c, "c": math.cos(c) * a + 2.0 * b * c}


@MODES
def test_wrt_by_position_negative_position_name_and_mixed_tuple(compiled):
    a, b, c = 0.7, -1.3, 0.4
    d = three_partials(a, b, c)
    grad = lambda wrt: srcdiff.grad(three, wrt=wrt, compile=compiled)(a, b, c)  # noqa: E731
    assert grad(1) == pytest.approx(d["b"], rel=1e-14)
    assert grad(-1) == pytest.approx(d["c"], rel=1e-14)
    assert grad(-3) == pytest.approx(d["a"], rel=1e-14)
    assert grad("b") == pytest.approx(d["b"], rel=1e-14)
    mixed = grad((0, "c", -2))
    assert isinstance(mixed, tuple) and len(mixed) == 3
    assert mixed == pytest.approx((d["a"], d["c"], d["b"]), rel=1e-14)
    assert grad(["a", 2]) == pytest.approx((d["a"], d["c"]), rel=1e-14)


@MODES
def test_single_wrt_returns_a_gradient_and_tuple_wrt_a_tuple(compiled):
    a, b, c = 0.7, -1.3, 0.4
    single = srcdiff.grad(three, wrt=0, compile=compiled)(a, b, c)
    one_tuple = srcdiff.grad(three, wrt=(0,), compile=compiled)(a, b, c)
    assert not isinstance(single, tuple)
    assert isinstance(one_tuple, tuple) and len(one_tuple) == 1
    assert one_tuple[0] == single
    value, grads = srcdiff.value_and_grad(three, wrt=("a", "b"), compile=compiled)(a, b, c)
    assert value == pytest.approx(three(a, b, c), rel=1e-14)
    assert isinstance(grads, tuple) and len(grads) == 2


def test_keyword_call_binds_like_the_function():
    a, b, c = 0.7, -1.3, 0.4
    g = srcdiff.grad(three, wrt="c", compile=False)
    assert g(a, c=c, b=b) == pytest.approx(three_partials(a, b, c)["c"], rel=1e-14)


# ---- value_and_grad, forward, source --------------------------------------------------------
def smooth(x, y):
    return np.sum(np.tanh(x) * y) + np.sum(x * x) * 0.5


@MODES
def test_value_and_grad_value_equals_the_function(compiled):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=6), rng.normal(size=6)
    value, (dx, dy) = srcdiff.value_and_grad(smooth, wrt=(0, 1), compile=compiled)(x, y)
    assert value == pytest.approx(smooth(x, y), rel=1e-13)
    np.testing.assert_allclose(dx, (1 - np.tanh(x) ** 2) * y + x, rtol=1e-12)
    np.testing.assert_allclose(dy, np.tanh(x), rtol=1e-12)
    gx = srcdiff.grad(smooth, wrt=(0, 1), compile=compiled)(x, y)
    np.testing.assert_allclose(gx[0], dx, rtol=1e-14)


@MODES
def test_forward_equals_the_plain_function(compiled):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=6), rng.normal(size=6)
    g = srcdiff.grad(smooth, compile=compiled)
    assert g.forward(x, y) == pytest.approx(smooth(x, y), rel=1e-13)
    assert srcdiff.grad(three, compile=compiled).forward(0.7, -1.3, 0.4) == pytest.approx(
        three(0.7, -1.3, 0.4), rel=1e-15)


@MODES
def test_forward_follows_the_argument_types_from_call_to_call(compiled):
    # repeated calls take a fast path for the last signature; other types must not use it
    rng = np.random.default_rng(4)
    g = srcdiff.grad(smooth, compile=compiled)
    vectors = (rng.normal(size=6), rng.normal(size=6))
    calls = [vectors, (rng.normal(size=(2, 3)), rng.normal(size=(2, 3))),
             tuple(v.astype(np.float32) for v in vectors), vectors, vectors]
    for args in calls:
        rel = 1e-6 if args[0].dtype == np.float32 else 1e-13
        assert g.forward(*args) == pytest.approx(smooth(*args), rel=rel)
        assert g.forward(x=args[0], y=args[1]) == pytest.approx(smooth(*args), rel=rel)


def test_source_before_any_call_is_an_error_and_after_is_the_last_signature():
    g = srcdiff.grad(smooth, compile=False)
    with pytest.raises(srcdiff.SrcdiffError, match="source_for"):
        g.source
    x = np.ones(3)
    text = g.source_for(x, x)
    assert "def forward(x, y):" in text and "def gradient(x, y):" in text
    with pytest.raises(srcdiff.SrcdiffError):
        g.source  # source_for compiles nothing and records no signature
    g(x, x)
    assert g.source == text
    g(x.astype(np.float32), x.astype(np.float32))
    assert g.source != text and "float32[1d]" in g.source


def test_repeated_calls_check_types_and_wrap_errors_as_the_first_call_does():
    g = srcdiff.grad(smooth)
    x, y = np.linspace(-1.0, 1.0, 4), np.linspace(0.5, 2.0, 4)
    expected = (1 - np.tanh(x) ** 2) * y + x
    for _ in range(2):
        np.testing.assert_allclose(g(x, y), expected, rtol=1e-14)
    np.testing.assert_allclose(g(x[::-1].copy()[::-1], y=y), expected, rtol=1e-14)
    np.testing.assert_allclose(g(x[::-1], y[::-1]), expected[::-1], rtol=1e-14)
    with pytest.raises(srcdiff.SrcdiffError, match="not a float"):
        g(np.arange(4), y)
    with pytest.raises(srcdiff.SrcdiffError, match="failed on these arguments"):
        g(x, np.ones(3))
    with pytest.raises(TypeError, match=r"^smooth\(\) missing 1 required positional argument: 'y'$"):
        g(x)
    g32 = g(x.astype(np.float32), y.astype(np.float32))
    assert g32.dtype == np.float32
    assert g(x, y).dtype == np.float64
    with pytest.raises(srcdiff.SrcdiffError, match="failed on these arguments"):
        g(x, np.ones(3))


def scaled_tanh(x, scale=2.0):
    """Doc of scaled_tanh."""
    return np.sum(np.tanh(x) * scale)


def gradient(gradient, fast, error=1.0):
    return np.sum(gradient * fast * error)


@MODES
def test_the_gradient_takes_the_functions_own_parameters(compiled):
    import inspect
    g = srcdiff.value_and_grad(scaled_tanh, compile=compiled)
    assert inspect.signature(g) == inspect.signature(scaled_tanh) and g.__doc__ == scaled_tanh.__doc__
    x = np.linspace(-1.0, 1.0, 5)
    expected = 2.0 * (1.0 - np.tanh(x) ** 2)
    for call in (lambda: g(x), lambda: g(x=x), lambda: g(x, 2.0), lambda: g(scale=2.0, x=x)):
        value, dx = call()
        assert value == pytest.approx(scaled_tanh(x)) and np.allclose(dx, expected, rtol=1e-14)
    assert g.forward(x) == g.forward(scale=2.0, x=x) == pytest.approx(scaled_tanh(x))
    with pytest.raises(TypeError, match=r"^scaled_tanh\(\) takes from 1 to 2 positional arguments but 3 were given$"):
        g(x, 2.0, 3.0)
    with pytest.raises(TypeError, match=r"^scaled_tanh\(\) got an unexpected keyword argument 'y'$"):
        g.forward(x, y=1.0)
    with pytest.raises(TypeError, match="scaled_tanh\\(\\) missing a required argument: 'x'"):
        g.source_for(scale=1.0)


@MODES
def test_parameters_named_like_the_call_s_own_variables(compiled):
    a, b = np.linspace(0.5, 1.5, 3), np.linspace(-1.0, 1.0, 3)
    g = srcdiff.grad(gradient, wrt=(0, 1, 2), compile=compiled)
    for got, expected in [(g(a, b, 3.0), (b * 3.0, a * 3.0, np.sum(a * b))),
                          (g(fast=b, gradient=a), (b, a, np.sum(a * b)))]:
        for got_part, expected_part in zip(got, expected, strict=True):
            np.testing.assert_allclose(got_part, expected_part, rtol=1e-14)
    assert_grad_matches_fd(gradient, (a, b, 3.0), wrt=(0, 1, 2))


def test_each_gradient_object_calls_its_own_function():
    g, h = srcdiff.grad(scaled_tanh), srcdiff.grad(plain_form)
    x = np.linspace(-1.0, 1.0, 4)
    np.testing.assert_allclose(g(x), 2.0 * (1.0 - np.tanh(x) ** 2), rtol=1e-14)
    np.testing.assert_allclose(h(x, x), np.cos(x) * x, rtol=1e-14)
    np.testing.assert_allclose(g(x, 1.0), 1.0 - np.tanh(x) ** 2, rtol=1e-14)
    assert type(g) is not type(h) and isinstance(g, srcdiff.Gradient)


@MODES
def test_a_gradient_pickles_and_copies_as_a_new_gradient_of_the_same_function(compiled):
    import copy
    import pickle
    g = srcdiff.value_and_grad(plain_form, wrt=(0, "y"), compile=compiled)
    x, y = np.linspace(-1.0, 1.0, 4), np.linspace(0.5, 2.0, 4)
    expected = g(x, y)
    for twin in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g), copy.copy(g)):
        assert type(twin) is not type(g) and twin.compile is compiled and twin.wrt == g.wrt
        value, (dx, dy) = twin(x, y)
        assert value == expected[0] and np.array_equal(dx, expected[1][0]) and np.array_equal(dy, expected[1][1])
        assert twin.forward(x, y=y) == expected[0]


@srcdiff.value_and_grad(wrt=("x", 1))
def decorated_for_pickling(x, y):
    return np.sum(np.sin(x) * y)


def test_a_decorated_gradient_pickles_by_name_as_functions_do():
    import pickle
    assert pickle.loads(pickle.dumps(decorated_for_pickling)) is decorated_for_pickling
    x, y = np.linspace(-1.0, 1.0, 3), np.linspace(0.5, 2.0, 3)
    value, (dx, dy) = decorated_for_pickling(x, y)
    np.testing.assert_allclose(dx, np.cos(x) * y, rtol=1e-14)


# ---- gradient types, dtypes and shapes -------------------------------------------------------
def scalar_fn(x, y):
    return x * x * y + math.sin(x)


def mixed_shapes(a, b, c):
    return np.sum(np.sin(a @ b)) + np.sum(c * c) * np.sum(b)


@MODES
def test_python_float_arguments_give_float_gradients(compiled):
    dx = srcdiff.grad(scalar_fn, compile=compiled)(0.5, 2.0)
    assert isinstance(dx, float)
    assert dx == pytest.approx(2 * 0.5 * 2.0 + math.cos(0.5), rel=1e-14)
    dx, dy = srcdiff.grad(scalar_fn, wrt=(0, 1), compile=compiled)(0.5, 2.0)
    assert isinstance(dx, float) and isinstance(dy, float)
    assert dy == pytest.approx(0.25, rel=1e-14)


@MODES
def test_float32_arrays_give_float32_gradients_and_shapes_match(compiled):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    c = rng.normal(size=(2, 1)).astype(np.float32)
    grads = srcdiff.grad(mixed_shapes, wrt=(0, 1, 2), compile=compiled)(a, b, c)
    for g, arg in zip(grads, (a, b, c)):
        assert isinstance(g, np.ndarray)
        assert g.dtype == np.float32
        assert g.shape == arg.shape
    grads64 = srcdiff.grad(mixed_shapes, wrt=(0, 1, 2), compile=compiled)(
        a.astype(np.float64), b.astype(np.float64), c.astype(np.float64))
    for g, g64, arg in zip(grads, grads64, (a, b, c)):
        assert g64.dtype == np.float64 and g64.shape == arg.shape
        np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-5)


def with_constants(x, n, idx, c):
    return np.sum(np.sin(x * c)) * n + np.sum(x * idx)


def test_non_wrt_arguments_are_constants():
    rng = np.random.default_rng(5)
    x, c = rng.normal(size=5), rng.normal(size=5)
    n, idx = 3, np.array([1, -2, 0, 4, 2])
    expected = c * np.cos(x * c) * n + idx
    dx = assert_grad_matches_fd(with_constants, (x, n, idx, c), 0)[0]
    np.testing.assert_allclose(dx, expected, rtol=1e-12)
    dx2, dc = srcdiff.grad(with_constants, wrt=(0, 3))(x, n, idx, c)
    np.testing.assert_allclose(dx2, expected, rtol=1e-12)
    np.testing.assert_allclose(dc, x * np.cos(x * c) * n, rtol=1e-12)


# ---- the seed neuron ----------------------------------------------------------------------
@MODES
def test_seed_neuron(compiled):
    w, x = seed_neuron_inputs()
    value, (dw, dx) = srcdiff.value_and_grad(neuron, wrt=(0, 1), compile=compiled)(w, x)
    assert value == pytest.approx(0.7311, abs=5e-5)
    np.testing.assert_allclose(dw, [-0.19661193, -0.39322387, 0.19661193], rtol=0, atol=1e-7)
    np.testing.assert_allclose(dx, [0.39322387, -0.5898358], rtol=0, atol=1e-7)


# ---- the MLP against a hand-written backward ---------------------------------------------
def mlp_by_hand(W1, b1, W2, b2, X, Y):
    """The loss of diff_models.loss and its gradient w.r.t. W1, b1, W2, b2, written out."""
    n = X.shape[0]
    a = X @ W1 + b1
    h = np.maximum(a, 0.0)
    z0 = h @ W2 + b2
    m = np.max(z0, axis=1, keepdims=True)
    z = z0 - m
    s = np.sum(np.exp(z), axis=1, keepdims=True)
    logp = z - np.log(s)
    value = -np.sum(Y * logp) / n
    dlogp = -Y / n
    dz = dlogp - np.exp(z) / s * np.sum(dlogp, axis=1, keepdims=True)
    dm = -np.sum(dz, axis=1, keepdims=True)
    argmax = (z0 == m) / np.sum(z0 == m, axis=1, keepdims=True)
    dz0 = dz + argmax * dm
    dW2 = h.T @ dz0
    db2 = np.sum(dz0, axis=0)
    da = (dz0 @ W2.T) * (a > 0)
    dW1 = X.T @ da
    db1 = np.sum(da, axis=0)
    return value, (dW1, db1, dW2, db2)


def test_mlp_matches_hand_written_backward():
    args = mlp_inputs(seed=7)
    X, W1, b1 = args[4], args[0], args[1]
    assert np.min(np.abs(X @ W1 + b1)) > 1e-6  # no relu kinks in the data
    value, expected = mlp_by_hand(*args)
    assert value == pytest.approx(loss(*args), rel=1e-13)
    got = assert_grad_matches_fd(loss, args, (0, 1, 2, 3))
    for name, g, e, arg in zip(("W1", "b1", "W2", "b2"), got, expected, args):
        assert g.shape == arg.shape
        assert_close_relative(g, e, 1e-10, what=name)
    plain = srcdiff.grad(loss, wrt=(0, 1, 2, 3), compile=False)(*args)
    for g, e in zip(plain, expected):
        assert_close_relative(g, e, 1e-10)


# ---- fan-out and broadcasting -------------------------------------------------------------
def residual(x, W):
    y = x + np.tanh(x @ W)
    return np.sum(y * y)


def test_residual_block_sums_both_paths():
    rng = np.random.default_rng(8)
    x, W = rng.normal(size=(5, 4)), rng.normal(scale=0.5, size=(4, 4))
    t = np.tanh(x @ W)
    dy = 2 * (x + t)
    da = dy * (1 - t * t)
    dx, dW = assert_grad_matches_fd(residual, (x, W), (0, 1))
    assert_close_relative(dx, dy + da @ W.T, 1e-12, "dx")
    assert_close_relative(dW, x.T @ da, 1e-12, "dW")


def bias_add(X, b):
    return np.sum(np.sin(X + b))


def keepdims_broadcast(X, c):
    return np.sum(np.sin(X * c - np.mean(X, axis=1, keepdims=True)))


def scalar_plus_array(s, x):
    return np.sum(np.sin(s + x) * s)


def row_plus_matrix(r, X):
    return np.sum(np.sin(r + X) * X)


def test_broadcast_bias_gradient_is_summed_over_the_batch():
    rng = np.random.default_rng(9)
    X, b = rng.normal(size=(6, 3)), rng.normal(size=3)
    dX, db = assert_grad_matches_fd(bias_add, (X, b), (0, 1))
    assert db.shape == (3,)
    assert_close_relative(db, np.sum(np.cos(X + b), axis=0), 1e-12)
    assert_close_relative(dX, np.cos(X + b), 1e-12)


def test_broadcast_column_and_keepdims():
    rng = np.random.default_rng(10)
    X, c = rng.normal(size=(4, 5)), rng.normal(size=(4, 1))
    u = X * c - np.mean(X, axis=1, keepdims=True)
    gu = np.cos(u)
    dX, dc = assert_grad_matches_fd(keepdims_broadcast, (X, c), (0, 1))
    assert dc.shape == (4, 1)
    assert_close_relative(dc, np.sum(gu * X, axis=1, keepdims=True), 1e-12)
    assert_close_relative(dX, gu * c - np.mean(gu, axis=1, keepdims=True), 1e-12)


def test_broadcast_scalar_plus_array():
    rng = np.random.default_rng(11)
    s, x = 0.3, rng.normal(size=(3, 4))
    ds, dx = assert_grad_matches_fd(scalar_plus_array, (s, x), (0, 1))
    assert isinstance(ds, float)
    assert ds == pytest.approx(np.sum(np.cos(s + x) * s + np.sin(s + x)), rel=1e-12)
    assert_close_relative(dx, np.cos(s + x) * s, 1e-12)


def test_broadcast_row_vector_plus_matrix():
    rng = np.random.default_rng(12)
    r, X = rng.normal(size=(1, 4)), rng.normal(size=(5, 4))
    dr, dX = assert_grad_matches_fd(row_plus_matrix, (r, X), (0, 1))
    assert dr.shape == (1, 4)
    assert_close_relative(dr, np.sum(np.cos(r + X) * X, axis=0, keepdims=True), 1e-12)
    assert_close_relative(dX, np.cos(r + X) * X + np.sin(r + X), 1e-12)


# ---- check_grad ------------------------------------------------------------------------------
def cubic(x):
    return np.sum(x ** 3)


def test_check_grad_passes_and_returns_the_worst_error():
    x = np.array([0.5, -1.0, 2.0])
    worst = srcdiff.check_grad(cubic, x, compile=False)
    assert 0.0 <= worst < 1e-6
    assert srcdiff.check_grad(srcdiff.grad(cubic, compile=False), x, compile=False) < 1e-6


def test_check_grad_failure_reports_the_worst_entries():
    # srcdiff's gradient 3x^2 is exact; central differences with a coarse step are off by
    # eps^2 = 1e-4 everywhere, far beyond the default tolerance: a real disagreement.
    # (|x| < 1.8 keeps rtol * 3x^2 below that error for every entry)
    x = np.array([0.5, -1.0, 1.2, 1.5])
    with pytest.raises(GradientCheckError) as info:
        srcdiff.check_grad(cubic, x, eps=1e-2, compile=False)
    error = info.value
    assert isinstance(error, AssertionError) and isinstance(error, srcdiff.SrcdiffError)
    text = str(error)
    assert "gradient check failed for `cubic`" in text
    assert "worst" in text
    assert "dx: 4 of 4 entries differ" in text
    assert "finite differences" in text and "srcdiff" in text
    fd = numeric_gradient(cubic, (x,), 0, 1e-2)
    np.testing.assert_allclose(fd, 3 * x * x + 1e-4, rtol=1e-9)


def offset_cubic(x):
    return np.sum(x ** 3) + 12345.678


def test_check_grad_allows_for_the_rounding_of_a_large_value():
    """f near 1e4 is rounded by 2e-12 at every evaluation, so its central differences are
    off by up to 4e-6 with the 1e-6 step, far above atol 1e-7 where the slope is small."""
    x = np.array([1e-3, -2e-3, 0.5, 0.25, 1e-4])
    assert srcdiff.check_grad(offset_cubic, x, compile=False) < 1e-5
    with pytest.raises(GradientCheckError):         # but a coarse step is still caught
        srcdiff.check_grad(offset_cubic, x, eps=1e-2, compile=False)


def sum_of_logs(x):
    return np.sum(np.log(x))


def test_check_grad_in_float32_holds_for_entries_small_next_to_its_step():
    """d log(x) at x = 0.01 is 100; plain central differences with the float32 step 1e-3 give
    100.33 (off by 3e-3, over rtol 1e-3), the extrapolated ones 99.9993. Large entries, where
    x + step rounds to another step in float32, are differenced over the step float32 holds."""
    x = np.array([0.01, 0.5, 3.0, 1000.0], dtype=np.float32)
    for compiled in (True, False):
        assert srcdiff.check_grad(sum_of_logs, x, compile=compiled) < 1e-2
    plain = numeric_gradient(sum_of_logs, (x,), 0, 1e-3)
    refined = extrapolated(sum_of_logs, (x,), 0, 1e-3, plain)
    exact = 1.0 / x.astype(np.float64)
    assert abs(plain[0] / exact[0] - 1.0) > 2e-3 and abs(refined[0] / exact[0] - 1.0) < 1e-4
    # elsewhere both are within float32's rounding of f over the step, which atol allows for
    np.testing.assert_allclose(refined, exact, atol=1e-3)


def wave_energy(u0, c, steps):
    u_prev, u = u0.copy(), u0.copy()
    c2 = c * c * 0.25
    for _ in range(steps):
        u_next = np.zeros_like(u)
        u_next[1:-1] = 2.0 * u[1:-1] - u_prev[1:-1] + c2 * (u[2:] - 2.0 * u[1:-1] + u[:-2])
        u_prev, u = u, u_next
    return np.sum(u * u) + np.sum((u - u_prev) ** 2)


def test_check_grad_in_float32_holds_where_rounding_outweighs_the_step():
    """30 float32 steps round f by about 1e-6 |f|: there the extrapolated differences, which
    weigh that rounding more, are further off than the plain ones, and the plain ones count."""
    u0 = np.exp(-50.0 * (np.linspace(0.0, 1.0, 16) - 0.5) ** 2).astype(np.float32)
    for compiled in (True, False):
        assert srcdiff.check_grad(wave_energy, u0, 0.9, 30, wrt=(0, 1), compile=compiled) < 2e-3


def test_check_grad_with_a_one_element_wrt_tuple():
    x = np.array([0.5, -1.0, 1.2])
    assert srcdiff.check_grad(cubic, x, wrt=(0,), compile=False) < 1e-6
    assert srcdiff.check_grad(cubic, x, wrt=("x",), compile=False) < 1e-6


def test_report_orders_entries_by_excess():
    got = np.array([1.0, 2.0, 3.0])
    expected = np.array([1.0, 2.5, 3.1])
    error = np.abs(got - expected)
    text = _report("w", got, expected, error, np.full(3, 0.01))
    lines = text.splitlines()
    assert lines[0] == "  dw: 2 of 3 entries differ; worst:"
    assert lines[1].startswith("    w[1]: srcdiff 2,")
    assert lines[2].startswith("    w[2]: srcdiff 3,")


# ---- methods and attributes on any array expression -----------------------------------------
def methods_on_expressions(X, w):
    a = np.tanh(X @ w).mean() + (X * 2.0).max(axis=0).sum() + (X - 1.0).min(axis=1, keepdims=True).sum()
    b = np.sum((X * w).T.copy() * X.T) + np.exp(X[0:2]).reshape((4, 1)).sum() + np.sin(w).dot(w)
    return a + b * (X * 1.0).size / (X + 0.0).ndim + X[0].transpose().sum()


def test_methods_and_attributes_apply_to_expressions():
    X = np.array([[0.3, -0.8], [1.1, 0.4], [-0.5, 0.9]])
    w = np.array([0.7, -0.2])
    assert_grad_matches_fd(methods_on_expressions, (X, w), wrt=(0, 1))


# ---- cache --------------------------------------------------------------------------------
def test_clear_cache_removes_generated_modules(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCDIFF_CACHE_DIR", str(tmp_path / "cache"))
    srcdiff.grad(cubic, compile=False)(np.array([1.0, 2.0]))
    assert list((tmp_path / "cache").glob("srcdiff_*.py"))
    srcdiff.clear_cache()
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert os.path.isdir(tmp_path / "cache")


# ---- your own functions returning several values ----------------------------------------------
def split_two(x):
    return x * 2.0, x + 1.0


def mean_and_variance(v):
    m = np.mean(v)
    d = v - m
    return m, np.mean(d * d)


def uses_tuple_helpers(x):
    a, b = split_two(x)
    m, var = mean_and_variance(a * b)
    return np.sum(a * b) + m * var


def leapfrog(y, v, h):
    for i in range(2):
        v = v - h * y
        y = y + h * v
    return y, v


def rollout_with_tuple_steps(y0, v0):
    y, v = y0, v0
    for t in range(5):
        y, v = leapfrog(y, v, 0.1)
    return np.sum(y * y + v * v)


def test_functions_returning_several_values_are_unpacked():
    x = np.array([0.3, -0.2, 0.5])
    assert_grad_matches_fd(uses_tuple_helpers, (x,), 0)
    assert_grad_matches_fd(rollout_with_tuple_steps, (x, x * 0.5), (0, 1))


# ---- NumPy functions written with srcdiff's own gates: var, std, linalg.norm, clip -------------
def spreads(x):
    return (np.var(x) + np.std(x) + np.sum(np.var(x, axis=0)) + x.var()
            + np.sum(x.std(axis=1, keepdims=True) * x))


def norms(x):
    return (np.linalg.norm(x) + np.sum(np.linalg.norm(x, axis=1))
            + np.sum(np.linalg.norm(x, axis=0, keepdims=True) * x))


def clipped(x):
    return (np.sum(np.clip(x, -0.5, 0.5) * x) + np.sum(np.clip(x, None, 0.2))
            + np.sum(np.clip(x, -0.1, None) ** 2))


@pytest.mark.parametrize("fn", [spreads, norms, clipped])
def test_var_std_norm_clip(fn):
    x = np.random.default_rng(5).normal(size=(4, 3))
    assert_grad_matches_fd(fn, (x,), 0)
    value, _ = srcdiff.value_and_grad(fn)(x)
    assert value == pytest.approx(fn(x), rel=1e-12)


# ---- a row of a matrix accumulated in a nested loop (`dp[i] += ...` with p[i] a row) ----------
def inverse_distances(p):
    s = 0.0
    for i in range(p.shape[0]):
        for j in range(i + 1, p.shape[0]):
            s += 1.0 / np.linalg.norm(p[i] - p[j])
    return s


def test_rows_accumulated_in_a_nested_loop():
    p = np.random.default_rng(6).normal(size=(5, 3))
    assert_grad_matches_fd(inverse_distances, (p,), 0)


# ---- scalar casts np.float32(...) / np.float64(...) -------------------------------------------
def float32_accumulation(w, x):
    s = np.float32(0.0)
    for i in range(x.shape[0]):
        s += np.tanh(w[i] * x[i]) * np.float32(0.5)
    return s + np.float64(1.0) * w[0]


def test_numpy_scalar_casts():
    rng = np.random.default_rng(8)
    w, x = rng.normal(size=4).astype(np.float32), rng.normal(size=4).astype(np.float32)
    for compile in (False, True):
        g = srcdiff.grad(float32_accumulation, compile=compile)(w, x)
        assert g.dtype == np.float32
        expected = 0.5 * x / np.cosh(w * x) ** 2
        expected[0] += 1.0
        np.testing.assert_allclose(g, expected, rtol=1e-5)


def newaxis_outer(x):
    return np.sum(x[:, np.newaxis] * x[np.newaxis, :]) + np.sum(x[None, :] * x[:, None])


def test_np_newaxis_in_indices():
    assert_grad_matches_fd(newaxis_outer, (np.array([0.3, -0.2, 0.5]),), 0)


def sine_times(x, c):
    return np.sin(x) * c


@pytest.mark.parametrize("compile", [False, True])
def test_0d_array_arguments_get_0d_gradients(compile):
    g = srcdiff.grad(sine_times, compile=compile)(np.array(1.0), 2.0)
    assert isinstance(g, np.ndarray) and g.shape == () and g.dtype == np.float64
    assert g == pytest.approx(2.0 * np.cos(1.0), rel=1e-12)
    _, (a, b) = srcdiff.value_and_grad(sine_times, wrt=(0, 1), compile=compile)(
        np.array(1.0, np.float32), 2.0)
    assert a.shape == () and a.dtype == np.float32 and isinstance(b, float)


# ---- products of one factor take the power rule ----------------------------------------------
def cube_energy(r2):
    s6 = 1.0 / (r2 * r2 * r2)
    return s6 * s6 - s6


def cube_with_reused_square(r2):
    sq = r2 * r2
    return sq * r2 + sq


def test_product_chain_of_one_factor_uses_the_power_rule():
    forward, gradient = srcdiff.grad(cube_energy).source_for(1.3).split("def gradient")
    assert "r2 * r2 * r2" in forward          # the forward stays the user's product
    assert "3.0 * " in gradient and "* (r2 * r2)" in gradient, gradient
    assert srcdiff.value_and_grad(cube_energy)(1.3)[0] == cube_energy(1.3)
    assert_grad_matches_fd(cube_energy, (1.3,), 0)


def test_square_used_twice_keeps_the_product_rule():
    text = srcdiff.grad(cube_with_reused_square).source_for(1.3).split("def gradient")[1]
    assert "3.0 *" not in text
    assert srcdiff.grad(cube_with_reused_square)(1.3) == pytest.approx(3 * 1.3 ** 2 + 2 * 1.3)


# ---- products of integer and float arrays -----------------------------------------------------
def sin_of_product(a, b):
    return np.sum(np.sin(a @ b))


@pytest.mark.parametrize("ranks", [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_integer_array_times_float_array(ranks):
    rng = np.random.default_rng(sum(ranks))
    ints = rng.integers(-3, 4, size=(3,) * ranks[0])
    floats = rng.uniform(-0.5, 0.5, size=(3,) * ranks[1])
    assert_grad_matches_fd(sin_of_product, (ints, floats), 1)
    assert_grad_matches_fd(sin_of_product, (floats.T, ints.T), 0)
