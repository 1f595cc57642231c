"""What users run into at the edges of the API: gradients returned together never share
memory, values srcdiff cannot take are refused (never a silent zero), globals are read at
the first call, check_grad's defaults follow the precision, and a gradient keeps the type
of its argument."""
import functools
import math
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp

import srcdiff
from srcdiff import nn

from conftest import assert_grad_matches_fd

MODES = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
X = np.linspace(-1.0, 1.0, 5)


# ---- gradients returned together are separate arrays ----------------------------------------
def sum_of_two(x, y):
    return np.sum(np.sin(x + y))


def sum_of_three(x, y, z):
    return np.sum(np.sin(x + y + z) * 2.0)


def summed_matrices(A, B, v):
    return np.sum(np.tanh((A + B) @ v))


def separate(grads):
    arrays = [g for g in grads if isinstance(g, np.ndarray)]
    return not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])


@MODES
def test_the_two_gradients_of_a_sum_are_separate_arrays(compiled):
    dx, dy = srcdiff.grad(sum_of_two, wrt=(0, 1), compile=compiled)(X, 0.5 * X)
    assert separate((dx, dy))
    assert np.allclose(dx, np.cos(1.5 * X)) and np.allclose(dy, np.cos(1.5 * X))
    dx *= 0.0                       # an optimiser's in-place step on one leaves the other
    assert np.allclose(dy, np.cos(1.5 * X))


@MODES
def test_three_gradients_and_a_matrix_sum_are_separate(compiled):
    grads = srcdiff.grad(sum_of_three, wrt=(0, 1, 2), compile=compiled)(X, X, X)
    assert separate(grads)
    A = np.arange(9.0).reshape(3, 3) / 10
    grads = srcdiff.grad(summed_matrices, wrt=(0, 1), compile=compiled)(A, A.T.copy(), np.ones(3))
    assert separate(grads)
    assert_grad_matches_fd(summed_matrices, (A, A.T.copy(), np.ones(3)), wrt=(0, 1, 2))


@MODES
def test_an_argument_named_twice_in_wrt_gets_two_arrays(compiled):
    first, second = srcdiff.grad(sum_of_two, wrt=("x", 0), compile=compiled)(X, X)
    assert separate((first, second)) and np.allclose(first, second)


def test_the_generated_return_keeps_the_gradients_apart():
    g = srcdiff.grad(sum_of_three, wrt=(0, 1, 2))
    g(X, X, X)
    assert "return (dx, apart(dy, dx), apart(apart(dz, dx), dy))" in g.source


# ---- values srcdiff cannot take: refused, with the argument named --------------------------
def sine_sum(x):
    return np.sum(np.sin(x) * x)


def scaled_sum(x, n):
    return np.sum(x) * n


@MODES
@pytest.mark.parametrize("make, says", [
    (lambda: np.float16(0.5), "NumPy float16 scalar"),
    (lambda: np.longdouble(0.5), "scalar"),
    (lambda: np.array(0.5, np.float16), "float16"),
    (lambda: np.ones(3, ">f8"), "non-native byte order"),
    (lambda: np.asmatrix(np.ones(3)), "np.matrix"),
], ids=["float16", "longdouble", "float16-0d", "big-endian", "matrix"])
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_unsupported_values_are_refused_not_given_a_zero_gradient(compiled, make, says):
    with pytest.raises(srcdiff.SrcdiffError, match=says) as caught:
        srcdiff.grad(sine_sum, compile=compiled)(make())
    assert "test_user_edges.py:" in str(caught.value) and "hint:" in str(caught.value)


def test_an_integer_beyond_64_bits_is_refused():
    with pytest.raises(srcdiff.SrcdiffError, match="beyond 64 bits"):
        srcdiff.grad(scaled_sum)(X, 2 ** 70)


def test_a_big_endian_array_after_a_good_call_is_refused():
    g = srcdiff.grad(sine_sum)
    g(X)
    with pytest.raises(srcdiff.SrcdiffError, match="byte order"):
        g(X.astype(">f8"))


def returns_a_comparison(x):
    return np.sum(x) > 0


def returns_a_size(x):
    return x.shape[0]


def returns_an_int_constant(x):
    return 3


@pytest.mark.parametrize("fn, kind", [(returns_a_comparison, "a boolean"), (returns_a_size, "an integer"),
                                      (returns_an_int_constant, "an integer")])
def test_an_integer_or_boolean_result_is_refused(fn, kind):
    with pytest.raises(srcdiff.SrcdiffError, match=f"returns {kind}") as caught:
        srcdiff.grad(fn)(X)
    assert "test_user_edges.py:" in str(caught.value)


def doubled(fn):
    @functools.wraps(fn)
    def wrapper(x):
        return 2.0 * fn(x)
    return wrapper


@doubled
def wrapped_sine_sum(x):
    return np.sum(np.sin(x) * x)


def calls_a_wrapped_function(x):
    return wrapped_sine_sum(x) + 1.0


@pytest.mark.parametrize("fn", [wrapped_sine_sum, calls_a_wrapped_function])
def test_a_function_wrapped_by_a_decorator_is_refused(fn):
    # its source is the wrapped function's: differentiating it would drop the factor 2
    with pytest.raises(srcdiff.SrcdiffError, match="wrapper a decorator made") as caught:
        srcdiff.grad(fn)(X)
    assert "test_user_edges.py:" in str(caught.value)


LARGE_TABLE = np.linspace(0.0, 1.0, 65)
NODES = np.array([0.0, 0.5, 0.5, 1.0])
WEIGHTS = np.array([1.0, 2.0, 2.0, 1.0]) / 6.0
COUPLING = np.array([[1.0, -0.5], [0.25, 2.0]], dtype=np.float32)
BONDS = np.array([[0, 1], [1, 2]])


def reads_a_large_global_array(x):
    return np.sum(x * LARGE_TABLE)


def test_a_large_global_array_is_refused_with_a_hint_to_pass_it():
    with pytest.raises(srcdiff.SrcdiffError, match="array from outside the function") as caught:
        srcdiff.grad(reads_a_large_global_array)(LARGE_TABLE)
    assert "pass `LARGE_TABLE` as an argument" in str(caught.value)


def coupled_rate(y, t):
    return COUPLING @ y * np.cos(t)


def rk4_with_a_global_tableau(y0, dt):
    y = y0 * 1.0
    for n in range(6):
        t = n * dt
        k1 = coupled_rate(y, t)
        k2 = coupled_rate(y + 0.5 * dt * k1, t + NODES[1] * dt)
        k3 = coupled_rate(y + 0.5 * dt * k2, t + NODES[2] * dt)
        k4 = coupled_rate(y + dt * k3, t + NODES[3] * dt)
        y = y + dt * (WEIGHTS[0] * k1 + WEIGHTS[1] * k2 + WEIGHTS[2] * k3 + WEIGHTS[3] * k4)
    return np.sum(y * y) + np.sum(y[BONDS[:, 0]] * y[BONDS[:, 1] - 1])


def test_small_global_arrays_are_constants_written_into_the_code():
    assert_grad_matches_fd(rk4_with_a_global_tableau, (np.array([0.3, -0.7]), 0.1), (0, 1))
    source = srcdiff.grad(rk4_with_a_global_tableau).source_for(np.array([0.3, -0.7]), 0.1)
    assert "np.array([0.0, 0.5, 0.5, 1.0])" in source


# ---- globals: numbers of any NumPy type, read at the first call -----------------------------
COUNT = np.int64(3)
HALF = np.float32(0.5)


def uses_numpy_number_globals(x):
    return np.sum(x * x) * COUNT * HALF


@MODES
def test_numpy_number_globals_are_constants(compiled):
    assert np.allclose(srcdiff.grad(uses_numpy_number_globals, compile=compiled)(X), 3.0 * X)


@srcdiff.grad
def uses_what_is_defined_below(x):
    return np.sum(defined_below(x)) * FACTOR_BELOW


def defined_below(x):
    return np.sin(x) * x


FACTOR_BELOW = 2.0


def test_helpers_and_constants_defined_further_down_the_module():
    expected = 2.0 * (np.cos(X) * X + np.sin(X))
    assert np.allclose(uses_what_is_defined_below(X), expected)
    assert_grad_matches_fd(uses_what_is_defined_below.fn, (X,))


def uses_a_scale(x):
    return np.sum(x * x) * SCALE


SCALE = 1.0


def test_globals_are_read_at_the_first_call(monkeypatch):
    g = srcdiff.grad(uses_a_scale)
    monkeypatch.setitem(globals(), "SCALE", 3.0)     # after decorating, before the first call
    assert np.allclose(g(X), 6.0 * X)


def test_an_undefined_name_is_reported_at_the_first_call():
    g = srcdiff.grad(reads_nothing_defined)
    with pytest.raises(srcdiff.SrcdiffError, match="`never_defined` is not defined") as caught:
        g(X)
    assert "test_user_edges.py:" in str(caught.value)


def reads_nothing_defined(x):
    return np.sum(never_defined(x))


# ---- check_grad -------------------------------------------------------------------------
def weighted(x, y):
    return np.sum(x * y ** 2)


def test_check_grad_defaults_accept_a_correct_float32_gradient():
    assert srcdiff.check_grad(sine_sum, X.astype(np.float32) * 2) < 1e-2
    assert srcdiff.check_grad(sine_sum, np.float32(0.7)) < 1e-2
    with pytest.raises(srcdiff.GradientCheckError):
        srcdiff.check_grad(sine_sum, X.astype(np.float32) * 2, rtol=1e-9, atol=1e-12)


def test_check_grad_takes_arguments_by_name():
    assert srcdiff.check_grad(weighted, X, y=X) < 1e-6
    assert srcdiff.check_grad(weighted, x=X, y=X + 1.0, wrt=(0, 1)) < 1e-6


# ---- types of the gradient ----------------------------------------------------------------
def product_of_two(x, y):
    return x * y * 2.0


@MODES
def test_a_float32_scalar_gets_a_float32_gradient(compiled):
    dx = srcdiff.grad(sine_sum, compile=compiled)(np.float32(0.5))
    assert type(dx) is np.float32 and np.isclose(dx, np.cos(0.5) * 0.5 + np.sin(0.5), rtol=1e-6)
    dx, dy = srcdiff.grad(product_of_two, wrt=(0, 1), compile=compiled)(np.float32(0.5), np.float32(2.0))
    assert type(dx) is np.float32 and type(dy) is np.float32 and (dx, dy) == (4.0, 1.0)


@MODES
def test_source_shows_the_signature_of_the_last_call(compiled):
    g = srcdiff.grad(sine_sum, compile=compiled)
    g(X)
    g(X.astype(np.float32))
    g(X)
    assert "x: float64[1d]" in g.source.splitlines()[0]


# ---- programs whose gradients were wrong: each against finite differences, both modes -------
def log_softmax_then_edit(z):
    y = z.copy()
    lse = np.log(np.sum(np.exp(y), axis=1, keepdims=True))
    y[:, 0] -= 0.3                       # the logits change after their normaliser
    return np.sum(z * (y - lse))


def log_softmax_rebound_in_loop(z, w):
    y = z.copy()
    total = 0.0
    for it in range(2):
        lse = np.log(np.sum(np.exp(y), axis=1, keepdims=True))
        y = y + w
        total += np.sum(w * (y - lse))
    return total


def log_softmax_rebound_in_branch(z, flag):
    y = z * 1.0
    lse = np.log(np.sum(np.exp(y), axis=1, keepdims=True))
    if flag > 0:
        y = y * 2.0
    return np.sum(z * (y - lse))


def log_softmax_shift_then_edit(z):
    m = np.max(z, axis=1, keepdims=True)
    y = z.copy()
    shifted = y - m
    lse = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return np.sum(z * (shifted - lse))


def log_softmax_max_read_again(z):
    m = np.max(z, axis=1, keepdims=True)
    shifted = z - m
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return np.sum(z * logp) + 0.1 * np.sum(m ** 2)


def log_softmax_max_kept_from_a_loop(z, w):
    m = np.zeros((z.shape[0], 1))
    total = 0.0
    for it in range(2):
        logits = z * w + it
        m = np.max(logits, axis=1, keepdims=True)
        shifted = logits - m
        total += np.sum(z * (shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))))
    return total + np.sum(m ** 2)          # the last max, read after the loop


Z = np.array([[0.2, -1.0, 0.7], [1.5, 0.3, -0.4]])


@pytest.mark.parametrize("fn, args, wrt", [
    (log_softmax_then_edit, (Z,), 0),
    (log_softmax_rebound_in_loop, (Z, 0.5 * Z), (0, 1)),
    (log_softmax_rebound_in_branch, (Z, 1), 0),
    (log_softmax_shift_then_edit, (Z,), 0),
    (log_softmax_max_read_again, (Z,), 0),
    (log_softmax_max_kept_from_a_loop, (Z, 0.5 * Z + 1.0), (0, 1)),
], ids=["edit", "loop", "branch", "shift", "max-read", "max-after-loop"])
def test_a_log_softmax_is_fused_only_when_its_array_is_unchanged(fn, args, wrt):
    value = srcdiff.value_and_grad(fn, wrt=wrt)(*args)[0]
    assert np.isclose(value, fn(*args), rtol=1e-12)
    assert_grad_matches_fd(fn, args, wrt=wrt)


def keeps_the_previous_step(w, h0):
    h = h0.copy()
    prev = np.zeros(h0.shape[0])
    acc = 0.0
    for t in range(3):
        u = w * h
        acc += np.sum(u * prev)
        prev = u
        h = np.tanh(u)
    return acc


def keeps_the_previous_product(W, h0):
    h = h0.copy()
    prev = np.zeros(h0.shape[0])
    acc = 0.0
    for t in range(4):
        u = W @ h
        acc += np.sum((u - prev) ** 2)
        prev = u
        h = np.tanh(u)
    return acc


def test_two_arrays_carried_by_one_loop_come_back_in_order():
    w, h0 = np.array([0.9, -0.7]), np.array([0.5, 0.8])
    assert_grad_matches_fd(keeps_the_previous_step, (w, h0), wrt=(0, 1))
    W = np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6], [-0.2, 0.3, 0.7]])
    assert_grad_matches_fd(keeps_the_previous_product, (W, np.array([0.3, -0.5, 0.8])), wrt=(0, 1))


def accumulate_into(G, a):
    G += np.outer(a, a)
    return 0.0


def gram_through_a_helper(X):
    G = np.zeros((X.shape[1], X.shape[1]))
    for i in range(X.shape[0]):
        k = accumulate_into(G, X[i])
    return np.sum(G * G)


def scale_in_place(u, a):
    u *= a
    return u


def reads_after_a_helper_scaled_it(x, a):
    u = x * 1.0
    w = scale_in_place(u, a)
    return np.sum(u ** 2) + np.sum(w)


@pytest.mark.parametrize("fn, args, read", [
    (gram_through_a_helper, (np.arange(6.0).reshape(3, 2) / 5,), "in the next iteration of the loop around the call"),
    (reads_after_a_helper_scaled_it, (X, 2.0), "here"),
])
def test_an_array_changed_in_place_inside_a_helper_is_refused_when_read_again(fn, args, read):
    with pytest.raises(srcdiff.SrcdiffError, match="changed in place at .*inside a function it was "
                                                   f"passed to, and is read again {read};") as caught:
        srcdiff.grad(fn)(*args)
    assert "hint: in that function write" in str(caught.value)


def scale_and_return(u, a):
    u = u * a
    return u


def rebinds_a_helper_result(x, a):
    u = x * 1.0
    u = scale_and_return(u, a)
    return np.sum(u ** 2)


def test_a_helper_returning_its_new_array_is_differentiated():
    assert_grad_matches_fd(rebinds_a_helper_result, (X, 2.0), wrt=(0, 1))


# ---- float32 code numba types as float64 in a loop ------------------------------------------
def halves_in_a_loop(x):
    y = x.copy()
    for k in range(3):
        y = y * 0.5 + np.sin(y)
    return np.sum(y)


def float32_state_meets_float64_zeros(th0, k):
    th = th0.copy()
    om = np.zeros(th0.shape[0])
    for step in range(5):
        om = om + 0.1 * (-np.sin(th) * k)
        th = th + 0.1 * om
    return np.sum(th * th)


@pytest.mark.parametrize("fn, args, wrt", [
    (halves_in_a_loop, ((X + 0.3).astype(np.float32),), 0),
    (float32_state_meets_float64_zeros, (X.astype(np.float32), X.astype(np.float32) + 2), (0, 1)),
], ids=["constant", "zeros"])
def test_float32_loops_numba_cannot_type_in_float32_still_compile(fn, args, wrt):
    grads = srcdiff.grad(fn, wrt=wrt)(*args)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert all(g.dtype == np.float32 for g in grads)
    assert_grad_matches_fd(fn, args, wrt=wrt, rtol=1e-2, atol=1e-3, eps=1e-3, agree_rtol=1e-4)
    assert np.isclose(srcdiff.grad(fn, wrt=wrt).forward(*args), fn(*args), rtol=1e-5)



@MODES
@pytest.mark.parametrize("fn, args, wrt, kind", [
    (sine_sum, (X.astype(np.float32),), 0, np.float32),
    (sum_of_two, (X.astype(np.float32), X.astype(np.float32)), (0, 1), np.float32),
    (sine_sum, (X,), 0, float),
], ids=["float32", "float32-pair", "float64"])
def test_a_float32_value_stays_float32(compiled, fn, args, wrt, kind):
    value, _ = srcdiff.value_and_grad(fn, wrt=wrt, compile=compiled)(*args)
    forward = srcdiff.grad(fn, wrt=wrt, compile=compiled).forward(*args)
    assert isinstance(value, kind) and isinstance(forward, kind)
    assert np.isclose(value, fn(*args), rtol=1e-6, atol=1e-6)
    assert np.isclose(forward, fn(*args), rtol=1e-6, atol=1e-6)

# ---- calls users write: keywords to their own functions, min/max of several, ddof --------
def rbf(x, c, ell=1.0, scale=1.0):
    d = x - c
    return scale * np.exp(-0.5 * d * d / (ell * ell))


def calls_with_keywords(x, c):
    return np.sum(rbf(x, c, ell=0.7)) + np.sum(rbf(x, c, scale=2.0, ell=1.3)) + np.sum(rbf(c=c, x=x))


def smallest_of_three(a, b, c):
    return min(a, b, c) + 2.0 * max(a * b, c, b, 0.25)


def sample_spread(x):
    return np.std(x, ddof=1) + np.sum(np.var(x.reshape(2, 3), axis=1, ddof=1)) + x.var(ddof=0)


@pytest.mark.parametrize("fn, args, wrt", [
    (calls_with_keywords, (X, 0.3 * X + 0.1), (0, 1)),
    (smallest_of_three, (0.3, -0.4, 0.9), (0, 1, 2)),
    (smallest_of_three, (1.1, 0.7, 0.2), (0, 1, 2)),
    (sample_spread, (np.array([0.3, -1.2, 0.5, 2.0, 0.1, -0.4]),), 0),
], ids=["keywords", "min-max-a", "min-max-b", "ddof"])
def test_common_call_forms(fn, args, wrt):
    value = srcdiff.value_and_grad(fn, wrt=wrt)(*args)[0]
    assert np.isclose(value, fn(*args), rtol=1e-12)
    assert_grad_matches_fd(fn, args, wrt=wrt)


def keyword_not_a_parameter(x):
    return np.sum(rbf(x, x, width=2.0))


def keyword_given_twice(x):
    return np.sum(rbf(x, x, 1.0, ell=2.0))


def ignores_a_helper_result(x):
    y = x.copy()
    rbf(y, x)
    return np.sum(y)


def prints_an_f_string(x):
    print(f"x = {x}")
    return np.sum(x)


@pytest.mark.parametrize("fn, says", [
    (keyword_not_a_parameter, "has no argument `width`"),
    (keyword_given_twice, "`ell` is given twice"),
    (ignores_a_helper_result, r"the result of `rbf\(...\)` is unused"),
    (prints_an_f_string, "f-strings are not supported in `print`"),
])
def test_call_mistakes_are_explained(fn, says):
    with pytest.raises(srcdiff.SrcdiffError, match=says) as caught:
        srcdiff.grad(fn)(X)
    assert "test_user_edges.py:" in str(caught.value)


def sets_a_constant_entry(x, c):
    c[0] = 1.0
    return np.sum(x * c)


@MODES
def test_writing_into_a_read_only_argument_is_explained(compiled):
    c = np.ones(3)
    c.flags.writeable = False
    with pytest.raises(srcdiff.SrcdiffError, match="writes into `c`, a read-only array") as caught:
        srcdiff.grad(sets_a_constant_entry, compile=compiled)(X[:3], c)
    assert "c.copy()" in str(caught.value)


def too_many_arguments(x):
    return np.sum(rbf(x, x, 1.0, 1.0, 2.0))


@pytest.mark.parametrize("fn", [keyword_not_a_parameter, keyword_given_twice, too_many_arguments])
def test_call_binding_errors_show_the_signature(fn):
    with pytest.raises(srcdiff.SrcdiffError, match=r"hint: it is `rbf\(x, c, ell, scale\)`"):
        srcdiff.grad(fn)(X)


def cube(a):
    return a ** 3


@MODES
def test_a_python_float_gets_a_python_float_in_both_modes(compiled):
    value, grad = srcdiff.value_and_grad(cube, compile=compiled)(2.0)
    assert type(value) is float and type(grad) is float and (value, grad) == (8.0, 12.0)
    dx, dy = srcdiff.grad(product_of_two, wrt=(0, 1), compile=compiled)(0.5, 2.0)
    assert type(dx) is float and type(dy) is float


# ---- a loop body that rebinds its loop variable ---------------------------------------------
def odd_entries_squared(x):
    s = 0.0
    for i in range(x.shape[0] // 2):
        i = 2 * i + 1                     # Python sets i from the range again next iteration
        s += x[i] ** 2
    return s


def neighbours_through_a_shifted_index(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        i = i + 1
        s += x[i] * x[i - 1]
    return s


def index_rebound_then_read_after_the_loop(x):
    s = 0.0
    for i in range(4):
        i = i * 2 - 1
        if i > 3:
            break
        s += np.sin(x[i] * s + x[i])
    return s + x[i] * 2.0               # the value the body gave i last (5, after the break)


@pytest.mark.parametrize("fn", [odd_entries_squared, neighbours_through_a_shifted_index,
                                index_rebound_then_read_after_the_loop])
def test_a_loop_body_may_rebind_its_loop_variable(fn):
    x = np.linspace(-1.0, 1.0, 7)
    assert np.isclose(srcdiff.value_and_grad(fn)(x)[0], fn(x), rtol=1e-12)
    assert_grad_matches_fd(fn, (x,))


# ---- tuple assignments into elements --------------------------------------------------------
def swap_two_elements(x):
    y = x.copy()
    y[0], y[2] = y[2], y[0]
    return y[0] * 3.0 + y[2] + np.sum(y * x)


def bubble_sorted_weighted(x):
    y = x * 1.0
    for k in range(y.shape[0]):
        for i in range(y.shape[0] - 1):
            if y[i] > y[i + 1]:
                y[i], y[i + 1] = y[i + 1], y[i]
    return y[0] * 3.0 + y[1] * 2.0 + y[4] * 0.5


def swap_two_rows(A):
    B = A.copy()
    B[0], B[1] = B[1], B[0]
    return np.sum(B * A)


@pytest.mark.parametrize("fn", [swap_two_elements, bubble_sorted_weighted])
def test_elements_swap_through_a_tuple_assignment(fn):
    x = np.array([0.3, -1.2, 0.8, 2.0, -0.1])
    assert np.isclose(srcdiff.value_and_grad(fn)(x)[0], fn(x), rtol=1e-12)
    assert_grad_matches_fd(fn, (x,))


def test_a_tuple_assignment_of_rows_is_refused_as_numpy_does_not_swap_them():
    with pytest.raises(srcdiff.SrcdiffError, match="the slices on the right are views") as caught:
        srcdiff.grad(swap_two_rows)(np.arange(4.0).reshape(2, 2))
    assert "hint: swap through a copy" in str(caught.value)


# ---- small forms users write: chained comparisons, a = b = ..., float("-inf") -------------
def banded_sum(x, y):
    a = b = x * 2.0
    s = 0.0
    for i in range(y.shape[0]):
        if -0.5 < y[i] <= 0.7:
            s += np.sin(y[i] * a)
        elif 0.7 < y[i] < 2.0 < 3.0:
            s += y[i] ** 2 * b
    return s + a * b


def running_max_from_minus_inf(x):
    m = float("-inf")
    for i in range(x.shape[0]):
        if x[i] > m:
            m = x[i]
    return m * 2.0 + float("1.5")


def logical_masks(x):
    inside = np.logical_and(x > -0.5, x < 0.5)
    return np.sum(np.where(np.logical_not(inside), x * x, 2.0 * x)) + np.sum(
        np.where(np.logical_or(x < -1.0, x > 1.0), x, 0.0))


def diff_of_a_matrix(A):
    return np.sum(np.diff(A))


@pytest.mark.parametrize("fn, args, wrt", [
    (banded_sum, (0.4, np.array([-1.0, -0.2, 0.5, 0.9, 1.5, 2.5])), (0, 1)),
    (running_max_from_minus_inf, (np.array([0.3, -1.2, 0.8, 2.0, -0.1]),), 0),
    (logical_masks, (np.array([0.3, -1.2, 0.8, 2.0, -0.1, 0.45]),), 0),
], ids=["chained", "minus-inf", "logical"])
def test_small_forms_users_write(fn, args, wrt):
    assert np.isclose(srcdiff.value_and_grad(fn, wrt=wrt)(*args)[0], fn(*args), rtol=1e-12)
    assert_grad_matches_fd(fn, args, wrt=wrt)


def test_np_diff_without_axis_of_a_matrix_is_refused():
    with pytest.raises(srcdiff.SrcdiffError, match="supported for 1-D arrays; this one is 2-D"):
        srcdiff.grad(diff_of_a_matrix)(np.ones((3, 4)))


def set_only_when_positive(x):
    if x > 0.0:
        y = x * 2.0
    return y * x


def test_a_name_a_branch_did_not_set_is_a_srcdiff_error_without_compiling():
    g = srcdiff.grad(set_only_when_positive, compile=False)
    assert np.isclose(g(0.5), 2.0)
    with pytest.raises(srcdiff.SrcdiffError, match="UnboundLocalError") as caught:
        g(-0.5)
    assert "give the name a value before the `if`" in str(caught.value)


# ---- a loop variable read outside its loop (the backward reruns the loop counting down) ----
def index_reused(x):            # an index picked and used, then the name reused by a loop
    i = 2
    s = x[i] * x[i]
    for i in range(4):
        s = s * 0.5 + x[i]
    return s


def last_then_loop(x):          # the last index of one loop read between two loops
    s = 0.0
    n = x.shape[0]
    for i in range(n):
        s += x[i] * x[i]
    last = x[i] * 2.0           # i == n - 1
    for i in range(n):
        s += x[i] * last
    return s


def inner_index_after(x, T):    # the inner loop's last index read after it, in the outer loop
    s = 0.1
    for t in range(T):
        for i in range(x.shape[0] - t):
            s = s * 0.9 + x[i]
        s = s * x[i]
    return s


def shadowed_index(x):          # an inner loop reusing the outer loop's index name
    s = 0.0
    for i in range(3):
        s += x[i]
        for i in range(2):
            s += x[i + 3] * 0.5
        s += x[i] * s           # i == 1 here
    return s


def continue_after_for(x):
    s = 1.0
    for i in range(3):
        s += x[i]
    while i < 6:            # carry on from where the for loop stopped
        s = s * x[i]
        i += 1
    return s


def for_inside_while(x):
    s = 0.0
    i = 0
    while i < 4:
        s = s + x[i] * s + 0.1
        for i in range(i, i + 2):
            s = s * 0.9 + x[i + 1]
        i = i + 1
    return s


@pytest.mark.parametrize("fn, args", [
    (index_reused, ()), (last_then_loop, ()), (inner_index_after, (3,)), (shadowed_index, ()),
    (continue_after_for, ()), (for_inside_while, ()),
])
def test_a_loop_variable_read_outside_its_loop(fn, args):
    x = np.array([0.1, -0.4, 0.7, 0.3, -0.2, 0.5, 0.9])
    assert np.isclose(srcdiff.value_and_grad(fn)(x, *args)[0], fn(x, *args), rtol=1e-12)
    assert_grad_matches_fd(fn, (x,) + args)


# ---- a small adjoint times a huge local derivative stays finite -------------------------------
def weighted_reciprocals(y, a):
    return np.sum(a * (1.0 / y))


def weighted_quotients(y, x, a):
    return np.sum(a * (x / y))


@MODES
@pytest.mark.parametrize("dtype, tiny, weight", [(np.float64, 1e-160, 1e-20), (np.float32, 1e-20, 1e-5)],
                         ids=["float64", "float32"])
def test_division_multiplies_the_adjoint_in_first(compiled, dtype, tiny, weight):
    """d(c / y)/dy = -c / y**2 overflows at y = tiny, but the gradient a * (-1 / y**2) does not."""
    y, a = np.array([tiny, 0.5], dtype), np.array([weight, 1.0], dtype)
    expected = -(a.astype(np.float64) / y.astype(np.float64)) / y.astype(np.float64)
    dy = srcdiff.grad(weighted_reciprocals, compile=compiled)(y, a)
    np.testing.assert_allclose(dy, expected, rtol=1e-5)
    dy = srcdiff.grad(weighted_quotients, compile=compiled)(y, np.ones(2, dtype), a)
    np.testing.assert_allclose(dy, expected, rtol=1e-5)


# ---- an array whose memory order changes in a loop -------------------------------------------
def transposed_each_step(A):
    for _ in range(3):
        A = np.sin(A.T) * np.cos(A.T)
    return np.sum(A)


def transposed_and_copied(A):
    for _ in range(3):
        A = (np.sin(A.T) * np.cos(A.T)).copy()
    return np.sum(A)


def test_a_changing_memory_order_is_explained_and_copy_is_the_cure():
    """numba types a variable holding a C-ordered and a transposed array as layout 'A', which
    it cannot allocate: a SrcdiffError names the cure, and the cure compiles and is right."""
    A = np.random.default_rng(3).standard_normal((3, 3))
    with pytest.raises(srcdiff.SrcdiffError, match=r"\.copy\(\)"):
        srcdiff.grad(transposed_each_step)(A)
    assert_grad_matches_fd(transposed_and_copied, (A,))
    np.testing.assert_allclose(srcdiff.grad(transposed_each_step, compile=False)(A),
                               srcdiff.grad(transposed_and_copied)(A), rtol=1e-12)


def float32_state_asked_for(W, xs):
    h = np.zeros(W.shape[0], dtype=np.float32)
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
    return np.sum(np.exp(h))


def float32_state_left_to_the_arguments(W, xs):
    h = np.zeros(W.shape[0]) * W[0, 0]
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
    return np.sum(np.exp(h))


def float32_state_by_astype(W, xs):
    h = np.zeros(W.shape[0]).astype(np.float32)
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
    return np.sum(h * h)


def float32_scale_by_cast(W, xs):
    h = np.zeros(W.shape[0], dtype=np.float32)
    c = np.float32(0.5)
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h * c + xs[t])
    return np.sum(h * h)


@pytest.mark.parametrize("f", [float32_state_by_astype, float32_scale_by_cast])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_asked_for_by_astype_or_a_cast_compiles(f, dtype):
    rng = np.random.default_rng(1)
    W = (0.3 * rng.standard_normal((8, 8))).astype(dtype)
    xs = rng.standard_normal((5, 8)).astype(dtype)
    assert srcdiff.grad(f)(W, xs).dtype == dtype
    srcdiff.check_grad(f, W, xs)


def test_a_float32_loop_state_asked_for_explicitly_compiles_in_float64():
    """numba makes the float32 state's adjoint float64 (`dh * (1.0 - h * h)`), so srcdiff
    compiles in float64; there the `dtype=np.float32` the function asks for is float64 too
    (kept float32, the loop could not be typed), and the gradient comes back in float32."""
    rng = np.random.default_rng(0)
    W = (0.3 * rng.standard_normal((10, 10))).astype(np.float32)
    xs = rng.standard_normal((6, 10)).astype(np.float32)
    for f in (float32_state_asked_for, float32_state_left_to_the_arguments):
        assert srcdiff.grad(f)(W, xs).dtype == np.float32
        for compiled in (True, False):
            srcdiff.check_grad(f, W, xs, compile=compiled)
    np.testing.assert_allclose(srcdiff.grad(float32_state_asked_for)(W, xs),
                               srcdiff.grad(float32_state_left_to_the_arguments)(W, xs), rtol=1e-6)
    wide = (W.astype(np.float64), xs.astype(np.float64))     # float32 asked for, float64 given
    assert srcdiff.grad(float32_state_asked_for)(*wide).dtype == np.float64
    srcdiff.check_grad(float32_state_asked_for, *wide)


# ---- a Python int divisor of zero follows NumPy in both modes --------------------------------
def scaled(a, k):
    return a / k


@MODES
def test_dividing_by_an_int_zero_is_inf_as_in_numpy(compiled):
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, gradient = srcdiff.value_and_grad(scaled, compile=compiled)(1.0, 0)
    assert value == np.inf and gradient == np.inf


# ---- a name set only in a branch or a loop: read when it was never set ----------------------
def set_in_branch(x):
    if x[0] > 0.0:
        y = x[0] * 2.0
    return y * y


def array_set_in_branch(x):
    if x[0] > 0.0:
        y = x * 2.0
    return np.sum(y * y)


def last_of_loop(x, n):
    s = 0.0
    for i in range(n):
        last = x[i] * 2.0
        s += last
    return s + last * last


def array_of_loop(x, n):
    for i in range(n):
        y = np.sin(x) * float(i + 1)
    return np.sum(y * y)


def accumulates_from_the_first(x):
    for i in range(x.shape[0]):
        if i == 0:
            acc = x[i] * x[i]
        else:
            acc = np.sin(acc) * x[i]
    return acc


def stores_after_loop(x, n):
    for i in range(n):
        y = np.sin(x) * float(i + 1)
    y[0] = 2.0 * x[0]
    y[1] += x[1]
    return np.sum(y * y)


def scales_set_in_branch(x):
    if x[0] > 0.0:
        y = x * 2.0
    y[0] *= x[1]
    return np.sum(y)


def helper_setting_in_branch(x, c):
    if c > 0.0:
        r = x * c
    return r


def calls_helper_setting_in_branch(x, c):
    return np.sum(helper_setting_in_branch(x, c) ** 2)


UNSET_CASES = [
    (set_in_branch, (np.array([-1.0, 2.0]),), (np.array([1.5, 2.0]),), "y"),
    (array_set_in_branch, (np.array([-1.0, 2.0]),), (np.array([1.5, 2.0]),), "y"),
    (last_of_loop, (np.array([1.5, 2.0]), 0), (np.array([1.5, 2.0]), 2), "last"),
    (array_of_loop, (np.array([1.5, 2.0]), 0), (np.array([1.5, 2.0]), 3), "y"),
    (accumulates_from_the_first, (np.zeros(0),), (np.array([0.3, -0.7, 1.1]),), "acc"),
    (stores_after_loop, (np.array([1.5, 2.0]), 0), (np.array([1.5, 2.0]), 2), "y"),
    (scales_set_in_branch, (np.array([-1.0, 2.0]),), (np.array([1.5, 2.0]),), "y"),
    (calls_helper_setting_in_branch, (np.array([1.5, 2.0]), -1.0), (np.array([1.5, 2.0]), 0.5), "r"),
]


@MODES
@pytest.mark.parametrize("fn, unset_args, set_args, name", UNSET_CASES,
                         ids=[c[0].__name__ for c in UNSET_CASES])
def test_reading_a_name_no_assignment_set_raises_as_python_does(compiled, fn, unset_args, set_args,
                                                                 name):
    with pytest.raises(UnboundLocalError):
        fn(*unset_args)
    for g in (srcdiff.grad(fn, compile=compiled), srcdiff.value_and_grad(fn, compile=compiled)):
        with pytest.raises(srcdiff.SrcdiffError, match=f"UnboundLocalError.*'{name}'") as error:
            g(*unset_args)
        assert f"{fn.__code__.co_filename}:" in str(error.value)
        assert "give the name a value before" in str(error.value)
    value, _ = g(*set_args)
    assert value == pytest.approx(fn(*set_args), rel=1e-12)


@pytest.mark.parametrize("fn, set_args", [(c[0], c[2]) for c in UNSET_CASES],
                         ids=[c[0].__name__ for c in UNSET_CASES])
def test_a_name_set_on_the_path_taken_has_the_right_gradient(fn, set_args):
    assert_grad_matches_fd(fn, set_args)


def test_only_reads_that_may_find_the_name_unset_are_checked():
    g = srcdiff.grad(last_of_loop)
    source = g.source_for(np.array([1.5, 2.0]), 2)
    assert source.count("assigned(last, last_is_set, 'last')") == 2   # forward and gradient
    assert "last_is_set = True" in source
    plain = srcdiff.grad(sum_of_two).source_for(X, X)
    assert "assigned(" not in plain and "_is_set" not in plain


# ---- the user's names and the generated code's own --------------------------------------------
def names_of_helpers(x, tape, top):
    s = 0.0
    push_array = x * 1.0
    for i in range(3):
        wins = np.maximum(push_array, top)
        reserve = np.sin(wins) * tape
        push_array = reserve
        spread_all = np.sum(push_array)
        s += spread_all
    return s


def test_variables_named_like_the_generated_code_s_helpers():
    # the helpers that such a name would hide are imported and called under another name
    x, tape = np.linspace(0.1, 1.0, 4), np.full(4, 0.9)
    assert_grad_matches_fd(names_of_helpers, (x, tape, 0.3), wrt=(0, 1, 2))
    g = srcdiff.grad(names_of_helpers)
    g(x, tape, 0.3)
    for name in ("push_array", "wins", "reserve", "spread_all"):
        assert f"{name} as {name}_1" in g.source and f"{name}_1(" in g.source, name


# ---- returns inside branches ---------------------------------------------------------------
def huber(r, d):
    if abs(r) <= d:
        return 0.5 * r * r
    return d * (abs(r) - 0.5 * d)


def piecewise(x):
    if x < 0.0:
        y = x * x
        return y
    elif x < 1.0:
        return math.sin(x)
    else:
        z = x ** 3
    return z + 1.0


def ordered(a, b):
    if a > b:
        return a - b, a * b
    return b - a, a + b


def pairs_through_a_helper(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        u, v = ordered(x[i], x[i + 1])
        s += u * v
    return s


def by_flag(x, flag):
    if flag > 0:
        return np.sum(x * x)
    else:
        return np.sum(np.sin(x))


def test_returns_inside_branches_move_to_the_end():
    for r in (0.3, -0.3, 2.0, -2.0):
        assert_grad_matches_fd(huber, (r, 1.0), wrt=(0, 1))
    for x in (-0.5, 0.5, 1.5):
        assert_grad_matches_fd(piecewise, (x,))
    assert_grad_matches_fd(pairs_through_a_helper, (np.array([0.3, 1.2, -0.4, 0.8]),))
    for flag in (1, -1):
        assert_grad_matches_fd(by_flag, (np.array([0.3, 1.2]), flag))
    value, grad = srcdiff.value_and_grad(huber)(2.0, 1.0)
    assert (value, grad) == (huber(2.0, 1.0), 1.0)
    g = srcdiff.grad(piecewise)
    g(0.5)
    forward = g.source.split("def gradient")[0]
    assert forward.count("\n    return result\n") == 1 and "result = np.sin(x)" in forward
    assert sum(line.strip().startswith("return") for line in forward.splitlines()) == 1


# ---- assert statements ---------------------------------------------------------------------
def weighted_squares(x, w):
    assert x.shape[0] == w.shape[0], "x and w must have the same length"
    s = 0.0
    for i in range(x.shape[0]):
        assert w[i] > 0
        s += w[i] * x[i] ** 2
    return s


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_asserts_run_in_the_forward_and_the_gradient(compiled):
    x, w = np.array([1.0, 2.0]), np.array([0.5, 1.5])
    assert_grad_matches_fd(weighted_squares, (x, w), wrt=(0, 1))
    g = srcdiff.value_and_grad(weighted_squares, wrt=(0, 1), compile=compiled)
    line = weighted_squares.__code__.co_firstlineno
    for args, at, says in (((x, np.ones(3)), line + 1, "x and w must have the same length"),
                           ((x, np.array([0.5, -1.0])), line + 4, "AssertionError")):
        for call in (g, g.forward):
            with pytest.raises(srcdiff.SrcdiffError, match=says) as info:
                call(*args)
            assert f"test_user_edges.py:{at}:" in str(info.value)
            assert "an assert of the function does not hold" in str(info.value)


# ---- a value the taken path does not use passes no NaN back ------------------------------------
# Its adjoint is zero there, and the rule of a gate with an infinite slope (sqrt at 0, x / 0,
# log at 0, an overflowed exp) would turn 0 * inf into NaN; PyTorch gives these zeros too.
def guarded_radius(x, y):
    r = math.sqrt(x * x + y * y)
    if r == 0.0:
        return 0.0
    return x / r + r


def guarded_normalise(v):
    n = np.sqrt(np.sum(v * v))
    if n < 1e-12:
        return 0.0
    return np.sum(v) / n


def sqrt_replaced_at_zero(x):
    r = math.sqrt(x)
    if x == 0.0:
        r = 0.0
    return r * 2.0


def exp_unused_past_overflow(x):
    e = np.exp(x)
    if np.max(x) > 700.0:
        return np.sum(x)
    return np.sum(e)


def quotient_unused_at_zero(x, y):
    q = x / y
    if y == 0.0:
        return x
    return q * q


def log_used_in_one_mode(x, mode):
    s = np.log(x)
    if mode == 0:
        return np.sum(x * x)
    return np.sum(s * x)


EDGE_CASES = [
    (guarded_radius, (0.0, 0.0), (0, 1), (0.0, 0.0)),
    (guarded_normalise, (np.zeros(3),), 0, np.zeros(3)),
    (sqrt_replaced_at_zero, (0.0,), 0, 0.0),
    (exp_unused_past_overflow, (np.array([800.0, 1.0]),), 0, np.ones(2)),
    (quotient_unused_at_zero, (1.0, 0.0), (0, 1), (1.0, 0.0)),
    (log_used_in_one_mode, (np.array([0.0, 2.0]), 0), 0, np.array([0.0, 4.0])),
]


@MODES
@pytest.mark.parametrize("fn, args, wrt, expected", EDGE_CASES, ids=[c[0].__name__ for c in EDGE_CASES])
def test_an_unused_value_with_an_infinite_slope_gives_no_nan(compiled, fn, args, wrt, expected):
    with np.errstate(all="ignore"):
        got = srcdiff.grad(fn, wrt=wrt, compile=compiled)(*args)
    for g, e in zip(*(r if isinstance(wrt, tuple) else (r,) for r in (got, expected))):
        np.testing.assert_array_equal(g, e)


INTERIOR = [(guarded_radius, (0.3, -0.4), (0, 1)), (guarded_normalise, (X + 2.0,), 0),
            (sqrt_replaced_at_zero, (2.0,), 0), (exp_unused_past_overflow, (X,), 0),
            (quotient_unused_at_zero, (0.7, 1.3), (0, 1)),
            (log_used_in_one_mode, (X + 2.0, 1), 0)]


@pytest.mark.parametrize("fn, args, wrt", INTERIOR, ids=[c[0].__name__ for c in INTERIOR])
def test_the_guarded_rules_keep_their_gradient_where_the_value_is_used(fn, args, wrt):
    assert_grad_matches_fd(fn, args, wrt)


def sqrt_over_itself(v):
    return np.sum(np.sqrt(v) / v)


def test_the_guard_is_only_where_an_adjoint_may_be_zero():
    source = srcdiff.grad(guarded_normalise).source_for(X + 2.0)
    assert source.count("if dn != 0.0:") == 1
    straight = srcdiff.grad(sqrt_over_itself).source_for(X + 2.0)
    assert "!= 0.0" not in straight and "np.any" not in straight


# ---- unpacking arrays, and enumerate with a start ------------------------------------------
def unpack_a_point(p, w):
    x, y = p
    return w[0] * x * x + w[1] * math.sin(y)


def pairs_over_rows(P):
    s = 0.0
    for x, y in P:
        s += x * y + math.cos(x)
    return s


def rows_unpacked(M):
    top, bottom = M
    return np.sum(top * bottom ** 2)


def numbered_from_one(v, w):
    s = 0.0
    for i, x in enumerate(v, 1):
        s += i * x * w[i - 1]
    for j, x in enumerate(w, start=3):
        s += j * x * x
    for j, (a, b) in enumerate(zip(v, w), 1):
        s += j * a * math.sin(b)
    return s


UNPACKING = [(unpack_a_point, (np.array([0.4, -0.7]), np.array([1.5, 2.0])), (0, 1)),
             (pairs_over_rows, (np.arange(6.0).reshape(3, 2) * 0.3,), 0),
             (rows_unpacked, (np.arange(6.0).reshape(2, 3) * 0.2,), 0),
             (numbered_from_one, (np.linspace(-1.0, 1.0, 4), np.linspace(0.5, 2.0, 4)), (0, 1))]


@pytest.mark.parametrize("fn, args, wrt", UNPACKING, ids=[c[0].__name__ for c in UNPACKING])
def test_arrays_unpack_into_names_and_enumerate_takes_a_start(fn, args, wrt):
    assert_grad_matches_fd(fn, args, wrt)


@MODES
def test_unpacking_an_array_of_another_length_is_an_error(compiled):
    g = srcdiff.grad(unpack_a_point, compile=compiled)
    with pytest.raises(srcdiff.SrcdiffError, match="unpacked into 2 names needs 2 entries"):
        g(np.ones(3), np.ones(2))


# ---- writing into the output of a gate whose rule reads that output ---------------------------
# p = np.exp(a) binds p to exp's own array; a later p[0] = ... must not change the value exp's
# rule reads (nor the value a loop's next iteration starts from, taped once for both).
def write_into_exp(a):
    p = np.exp(a)
    p[0] = p[0] * 2.0
    return np.sum(p)


def write_into_sqrt_then_square(a):
    p = np.sqrt(a)
    p[0] += 1.0
    return np.sum(p * p)


def write_into_a_quotient(a, b):
    p = a / b
    p[0] = 2.0 * p[0]
    return np.sum(p)


def write_into_a_row_max(A):
    p = np.max(A, axis=1)
    p[0] = 2.0 * p[0]
    return np.sum(p)


def write_into_a_transposed_tanh(A):
    p = np.tanh(A).T
    p[0, 1] = 2.0 * p[0, 1]
    return np.sum(p)


def normalise_rows_in_place(A):
    P = np.exp(A)
    for i in range(P.shape[0]):
        P[i, :] /= np.sum(P[i, :])
    return np.sum(P * A)


def damped_state_written_in_place(W, xs):
    h = np.zeros(W.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(h @ W + xs[t])
        h[:] = h * 0.5
    return np.sum(h)


def write_into_a_softmax(A):
    p = nn.softmax(A)
    p[0, 0] = 2.0 * p[0, 0]
    return np.sum(p * A)


POSITIVE_ROW = np.array([0.3, 0.5, 1.2])
MATRIX = np.array([[0.3, 0.5, 1.2], [0.9, -0.2, 0.1]])
WRITES_INTO_OUTPUTS = [
    (write_into_exp, (POSITIVE_ROW,), 0),
    (write_into_sqrt_then_square, (POSITIVE_ROW,), 0),
    (write_into_a_quotient, (POSITIVE_ROW, POSITIVE_ROW[::-1] + 0.2), (0, 1)),
    (write_into_a_row_max, (MATRIX,), 0),
    (write_into_a_transposed_tanh, (MATRIX,), 0),
    (normalise_rows_in_place, (MATRIX,), 0),
    (damped_state_written_in_place, (np.array([[0.5, -0.3], [0.2, 0.4]]),
                                      np.array([[0.1, 0.2], [0.3, -0.1], [0.5, 0.5]])), (0, 1)),
    (write_into_a_softmax, (MATRIX,), 0),
]


@pytest.mark.parametrize("fn, args, wrt", WRITES_INTO_OUTPUTS,
                         ids=[c[0].__name__ for c in WRITES_INTO_OUTPUTS])
def test_writing_into_a_gate_output_leaves_its_rule_the_value_it_made(fn, args, wrt):
    assert_grad_matches_fd(fn, args, wrt)


# ---- found by running users' functions ----------------------------------------------------------
def determinant(A):
    return np.linalg.det(A)


@MODES
def test_the_gradient_of_a_determinant_is_its_cofactors_also_where_it_is_singular(compiled):
    g = srcdiff.grad(determinant, compile=compiled)
    np.testing.assert_allclose(g(np.array([[1.0, 2.0], [2.0, 4.0]])), [[4.0, -2.0], [-2.0, 1.0]])
    singular = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.0, 1.0, 5.0]])
    np.testing.assert_allclose(g(singular), [[7.0, -5.0, 1.0], [0, 0, 0], [0, 0, 0]], atol=1e-12)


def squared_product(W, X):
    return np.sum((X @ W) ** 2)


@MODES
def test_a_float64_weight_times_float32_data_gets_a_float64_gradient(compiled):
    rng = np.random.default_rng(3)
    W, X = rng.standard_normal((3, 2)), rng.standard_normal((4, 3)).astype(np.float32)
    got = srcdiff.grad(squared_product, compile=compiled)(W, X)
    wide = X.astype(np.float64)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, wide.T @ (2.0 * (wide @ W)), rtol=1e-12)


def dot_of_vectors(x, y):
    return np.dot(x, y)


@MODES
def test_a_dot_product_of_vectors_of_other_lengths_raises_as_numpy_does(compiled):
    with pytest.raises(srcdiff.SrcdiffError, match="mismatch"):
        srcdiff.grad(dot_of_vectors, compile=compiled)(np.ones(4), np.arange(3.0))


def masked_pair_energy(r):
    inside = (r < 1.5) & (r > 0.2) | ~(r < 3.0)
    return np.sum(np.where(inside, r * r, 0.0))


def bits_of_an_integer(x, k):
    return x * (k & 1)


@MODES
def test_and_or_not_on_masks(compiled):
    r = np.array([0.1, 0.5, 1.0, 2.0, 4.0])
    np.testing.assert_array_equal(srcdiff.grad(masked_pair_energy, compile=compiled)(r),
                                  [0.0, 1.0, 2.0, 0.0, 8.0])
    with pytest.raises(srcdiff.SrcdiffError, match="on booleans"):
        srcdiff.grad(bits_of_an_integer, compile=compiled)(1.0, 3)


def test_a_numba_jitted_function_and_helper_are_differentiated_from_their_python_source():
    numba = pytest.importorskip("numba")
    helper = numba.njit(unpack_a_point)

    def uses_a_jitted_helper(p, w):
        return helper(p, w) * 2.0
    jitted = numba.njit(pairs_over_rows)
    P = np.arange(6.0).reshape(3, 2) * 0.3
    np.testing.assert_allclose(srcdiff.grad(jitted)(P), srcdiff.grad(pairs_over_rows)(P))
    p, w = np.array([0.4, -0.7]), np.array([1.5, 2.0])
    np.testing.assert_allclose(srcdiff.grad(uses_a_jitted_helper)(p, w),
                               2.0 * srcdiff.grad(unpack_a_point)(p, w))


def squared_distance_to_float32_data(a, y):
    return np.sum((y - a) ** 2)


def test_check_grad_takes_float32_steps_for_a_function_computed_in_float32():
    srcdiff.check_grad(squared_distance_to_float32_data, 0.7, np.linspace(0, 3, 30).astype(np.float32))


def prints_as_it_goes(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * w
        if i == 1:
            print("step", i, "s =", s)
    print("total", s)
    return s * s


@MODES
def test_print_runs_where_the_function_would_print(compiled, capfd):
    grad = srcdiff.grad(prints_as_it_goes, compile=compiled)(np.array([1.0, 2.0, 3.0]), 0.5)
    np.testing.assert_allclose(grad, [3.0, 3.0, 3.0])
    assert capfd.readouterr().out.split() == "step 1 s = 1.5 total 3.0".split()


# ---- tuples kept as values: arrays of their parts ------------------------------------------------
NODE_TUPLE = (0.0, 0.5, 0.5, 1.0)


def cell(state, x, W):
    h, c = state
    c = 0.5 * c + np.tanh(W @ (h + x))
    return np.tanh(c), c


def cell_over_time(W, xs):
    state = (np.zeros(W.shape[0]), np.zeros(W.shape[0]))
    for t in range(xs.shape[0]):
        state = cell(state, xs[t], W)
    h, c = state
    return np.sum(h * h) + np.sum(state[1])


def tableau_as_tuples(y, dt):
    weights = (1.0, 2.0, 2.0, 1.0)
    s = 0.0
    for i in range(4):
        s += np.sin(y * (1.0 + NODE_TUPLE[i] * dt)) * weights[i]
    return s


def mixes_a_number_and_a_vector(x, v):
    pair = (x, v)
    return np.sum(pair[1])


def test_tuples_kept_as_values_are_arrays_of_their_parts():
    rng = np.random.default_rng(4)
    assert_grad_matches_fd(cell_over_time, (0.3 * rng.standard_normal((3, 3)), rng.standard_normal((4, 3))))
    assert_grad_matches_fd(tableau_as_tuples, (0.7, 0.1), (0, 1))
    with pytest.raises(srcdiff.SrcdiffError, match="a tuple kept as a value is an array of its parts"):
        srcdiff.grad(mixes_a_number_and_a_vector)(1.0, np.ones(2))


def buffers_in_the_argument_dtype(x):
    y = np.zeros(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[0]):
        y[i] = x[i] * x[i]
    z = np.empty((2, x.shape[0]), dtype=x.dtype)
    z[0] = y
    z[1] = x
    return np.sum(y * x) + np.sum(z * z)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_arrays_made_in_the_dtype_of_an_argument(dtype):
    x = np.array([1.0, 2.0, 3.0], dtype=dtype)
    for compiled in (True, False):
        got = srcdiff.grad(buffers_in_the_argument_dtype, compile=compiled)(x)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, 3 * x ** 2 + 4 * x ** 3 + 2 * x)


def inverts_one_boolean(x):
    if ~(x > 0.0):
        return x * x
    return -x


def test_tilde_of_one_boolean_is_refused_as_python_reads_it_as_minus_two():
    with pytest.raises(srcdiff.SrcdiffError, match="~True is -2"):
        srcdiff.grad(inverts_one_boolean)(1.0)


# ---- arguments left at a default of None -------------------------------------------------------
def weighted_residuals(w, X, y, sample_weight=None, l2=0.0):
    if sample_weight is None:
        sample_weight = np.ones(X.shape[0])
    r = X @ w - y
    out = np.sum(sample_weight * r * r)
    if l2 > 0.0 and sample_weight is not None:
        out += l2 * np.sum(w * w)
    return out


def reads_a_none(w, b=None):
    return np.sum(w * b)


def test_an_argument_left_at_none_is_decided_per_call_signature():
    rng = np.random.default_rng(5)
    w, X, y = rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5)
    assert_grad_matches_fd(weighted_residuals, (w, X, y))
    assert_grad_matches_fd(weighted_residuals, (w, X, y, np.arange(5.0), 0.1))
    for compiled in (True, False):
        g = srcdiff.grad(weighted_residuals, compile=compiled)
        np.testing.assert_allclose(g(w, X, y), g(w, X, y, np.ones(5)))
        with pytest.raises(srcdiff.SrcdiffError, match="`b` is None here"):
            srcdiff.grad(reads_a_none, compile=compiled)(w)


def softened(x, eps=0.1):
    return np.sum(1.0 / np.sqrt(x * x + eps * eps))


def test_check_grad_refuses_an_option_that_is_also_a_parameter_of_the_function():
    with pytest.raises(srcdiff.SrcdiffError, match="has a parameter `eps`"):
        srcdiff.check_grad(softened, np.ones(3), eps=0.3)
    assert srcdiff.check_grad(softened, np.ones(3), 0.3) < 1e-6


def pair_distances_in_a_loop(x):
    e = 0.0
    for i in range(x.shape[0] - 1):
        d = x[:i + 1] - x[i + 1]
        d = d * d
        e += np.sum(d)
    return e


def test_an_array_rebound_to_other_shapes_whose_adjoint_a_loop_resets():
    assert_grad_matches_fd(pair_distances_in_a_loop, (np.array([0.0, 1.0, 3.0]),))


# ---- np.linalg.cholesky: Gaussian-process and Gaussian log-likelihoods ----------------------------
def gp_negative_log_likelihood(log_scale, log_noise, X, y):
    d = X[:, None, :] - X[None, :, :]
    K = np.exp(-0.5 * np.sum(d * d, axis=2) / np.exp(2.0 * log_scale)) \
        + np.exp(log_noise) * np.eye(X.shape[0])
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L, y)
    return 0.5 * alpha @ alpha + np.sum(np.log(np.diag(L)))


def gaussian_log_density(mean, cov, points):
    L = np.linalg.cholesky(cov)
    total = 0.0
    for x in points:
        z = np.linalg.solve(L, x - mean)
        total += -0.5 * z @ z - np.sum(np.log(np.diag(L)))
    return total


def test_a_gaussian_process_likelihood_through_cholesky_matches_finite_differences():
    rng = np.random.default_rng(3)
    X, y = rng.uniform(-2.0, 2.0, (7, 2)), rng.standard_normal(7)
    assert_grad_matches_fd(gp_negative_log_likelihood, (0.3, -1.0, X, y), wrt=(0, 1))


def test_cholesky_reads_the_lower_triangle_as_numpy_does():
    """NumPy and numba read only A's lower triangle: the upper one gets no gradient, and
    the lower one counts twice what a symmetric perturbation gives it."""
    rng = np.random.default_rng(4)
    B = rng.standard_normal((3, 3))
    cov = B @ B.T + 3.0 * np.eye(3)
    cov[0, 2] += 0.7        # the upper triangle is ignored by the forward
    points = rng.standard_normal((5, 3))
    dmean, dcov = assert_grad_matches_fd(gaussian_log_density, (np.zeros(3), cov, points), wrt=(0, 1))
    assert np.all(np.triu(dcov, 1) == 0.0)


@MODES
def test_cholesky_of_a_matrix_that_is_not_positive_definite_names_the_line(compiled):
    g = srcdiff.grad(gaussian_log_density, wrt=1, compile=compiled)
    with pytest.raises(np.linalg.LinAlgError, match="positive definite") as raised:
        g(np.zeros(2), -np.eye(2), np.ones((3, 2)))
    assert isinstance(raised.value, srcdiff.SrcdiffError)
    assert "np.linalg.cholesky(cov)" in str(raised.value) and "not positive definite" in str(raised.value)


# ---- methods that are NumPy functions, flips and running products ------------------------------
def flipped_vector(x, y):
    return np.sum(np.flip(x) * y) + np.sum(np.sin(x[::-1]) * np.flip(y, axis=0))


def flipped_matrix(M):
    return np.sum(np.fliplr(M) * np.sin(M)) + np.sum(np.flip(M, 1)[:, 0] ** 2)


def methods_as_functions(x, M):
    return x.prod() + np.sum(x.cumsum() * x.cumprod()) + np.sum(x.clip(0.2, 0.8)) + M.trace() \
        + x[x.argmax()] - x[x.argmin()]


def running_product_with_zeros(x):
    return np.sum(np.cumprod(x) * np.arange(1.0, x.size + 1.0))


def flip_all_axes(M):
    return np.sum(np.flip(M))


@MODES
def test_flips_and_array_methods_match_finite_differences(compiled):
    rng = np.random.default_rng(8)
    x, y, M = rng.uniform(0.1, 0.9, 6), rng.standard_normal(6), rng.standard_normal((3, 4))
    assert_grad_matches_fd(flipped_vector, (x, y), wrt=(0, 1))
    assert_grad_matches_fd(flipped_matrix, (M,))
    assert_grad_matches_fd(methods_as_functions, (x, rng.standard_normal((4, 4))), wrt=(0, 1))


@MODES
def test_the_gradient_of_a_running_product_is_exact_at_zeros(compiled):
    x = np.array([0.5, 0.0, 2.0, -1.5, 0.0])
    # d/dx[1] of sum_k (k + 1) x[0]...x[k] at the zeros: only k = 1 leaves a nonzero product
    expected = [1.0, -2.0, 0.0, 0.0, 0.0]
    np.testing.assert_array_equal(srcdiff.grad(running_product_with_zeros, compile=compiled)(x), expected)


def test_flip_without_an_axis_takes_a_vector():
    with pytest.raises(srcdiff.SrcdiffError, match=r"np.flip\(x\) without an axis.*2-D"):
        srcdiff.grad(flip_all_axes)(np.ones((2, 3)))


# ---- np.interp: a table looked up by linear interpolation ---------------------------------------
def table_loss(values, queries):
    knots = np.arange(values.shape[0])
    return np.sum(np.interp(queries, knots, values) ** 2)


def table_lookup(t, values, knots):
    return np.interp(t, knots, values)


def drag_rollout(coefficients, speeds, v0, dt, steps):
    v = v0
    for _ in range(steps):
        v = v - dt * np.interp(v, speeds, coefficients) * v * v
    return v


@MODES
def test_interp_gradients_at_knots_and_outside_them(compiled):
    values, queries = np.array([0.0, 1.0, 3.0, 2.0]), np.array([-1.0, 0.5, 1.0, 2.5, 3.0, 7.0])
    dvalues, dqueries = srcdiff.grad(table_loss, wrt=(0, 1), compile=compiled)(values, queries)
    # all of each 2 z's weight to the end values outside; at a knot, the segment starting there
    np.testing.assert_allclose(dvalues, [0.5, 2.5, 2.5, 10.5])
    np.testing.assert_allclose(dqueries, [0.0, 1.0, 4.0, -5.0, -4.0, 0.0])
    dt, dvalues, dknots = srcdiff.grad(table_lookup, wrt=(0, 1, 2), compile=compiled)(
        1.0, values, np.arange(4.0))
    assert dt == 2.0 and list(dvalues) == [0.0, 1.0, 0.0, 0.0] and list(dknots) == [0.0, -2.0, 0.0, 0.0]
    assert srcdiff.grad(table_lookup, wrt=(0, 1), compile=compiled)(2.0, np.array([5.0]),
                                                                     np.array([1.0]))[1] == [1.0]


def test_interp_in_a_rollout_matches_finite_differences():
    speeds = np.linspace(0.0, 12.0, 7)
    coefficients = 0.02 + 0.01 * np.sin(speeds)
    assert_grad_matches_fd(drag_rollout, (coefficients, speeds + 0.05, 10.3, 0.1, 40), wrt=(0, 1, 2))


def test_interp_with_options_is_refused_with_a_hint():
    def clamped(values, queries):
        return np.sum(np.interp(queries, np.arange(values.shape[0]), values, left=0.0))
    with pytest.raises(srcdiff.SrcdiffError, match="no left, right or period"):
        srcdiff.grad(clamped)


def median_of_products(x, y):
    return np.median(x * y)


@MODES
def test_the_median_passes_its_gradient_to_the_middle_entries(compiled):
    g = srcdiff.grad(median_of_products, compile=compiled)
    np.testing.assert_array_equal(g(np.array([3.0, 1.0, 2.0]), np.full(3, 2.0)), [0.0, 0.0, 2.0])
    # two middle entries share it; of equal entries the first in x's order counts as the lower
    np.testing.assert_array_equal(g(np.array([3.0, 1.0, 2.0, 2.0]), np.ones(4)), [0.0, 0.0, 0.5, 0.5])


# ---- entries picked in pairs: x[rows, cols] ------------------------------------------------------
def cross_entropy(W, X, labels):
    z = X @ W
    logp = z - logsumexp(z, axis=1, keepdims=True)
    return -np.mean(logp[np.arange(X.shape[0]), labels])


def picked_pairs(A, rows, cols):
    return np.sum(np.sin(A[rows, cols]) * A[rows, cols])


def written_pairs(A, rows, cols):
    B = A.copy()
    B[rows, cols] = 0.0
    return np.sum(B)


def test_cross_entropy_with_paired_index_arrays_matches_finite_differences():
    rng = np.random.default_rng(11)
    W, X, labels = rng.standard_normal((4, 3)), rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    assert_grad_matches_fd(cross_entropy, (W, X, labels))


@MODES
def test_repeated_and_negative_pairs_add_up_as_numpy_reads_them(compiled):
    A = np.arange(12.0).reshape(3, 4) / 7.0
    rows, cols = np.array([0, 2, 2, -1, 0]), np.array([1, 3, 3, 0, -3])
    assert_grad_matches_fd(picked_pairs, (A, rows, cols))
    g = srcdiff.grad(picked_pairs, compile=compiled)(A, rows, cols)
    assert np.count_nonzero(g) == 3          # (0, 1) twice, (2, 3) twice, (2, 0) once
    with pytest.raises(IndexError, match="shape mismatch"):
        srcdiff.grad(picked_pairs, compile=compiled)(A, rows, cols[:2])
    with pytest.raises(IndexError, match="out of bounds"):
        srcdiff.grad(picked_pairs, compile=compiled)(A, rows, cols + 9)


def test_writing_through_paired_index_arrays_is_refused_with_a_loop_to_write():
    with pytest.raises(srcdiff.SrcdiffError, match=r"x\[rows, cols\] = v") as raised:
        srcdiff.grad(written_pairs)(np.ones((2, 2)), np.array([0, 1]), np.array([1, 0]))
    assert "for k in range(rows.shape[0])" in str(raised.value)


def row_and_column_picks(A, idx, i, j):
    return np.sum(np.sin(A[i, idx]) * A[i, idx]) + np.sum(A[idx, j] ** 2)


def written_row_pick(A, v, idx):
    B = A.copy()
    B[0, idx] = v
    return np.sum(B)


def test_picks_from_one_row_or_column_add_their_repeats_up():
    A = np.arange(20.0).reshape(4, 5) / 9.0
    assert_grad_matches_fd(row_and_column_picks, (A, np.array([0, 2, 2, -1]), 1, -2))
    with pytest.raises(srcdiff.SrcdiffError, match=r"x\[i, idx\] = v"):
        srcdiff.grad(written_row_pick)(A, np.ones(3), np.array([0, 1, 1]))


# ---- an array rebound in a loop may change shape from one iteration to the next --------------
def minibatch_loss(W1, b1, W2, X, y, batch=8):
    total = 0.0
    for start in range(0, X.shape[0], batch):
        h = X[start:start + batch] @ W1     # the last minibatch is shorter
        h += b1
        h = np.maximum(h, 0.0)
        out = h @ W2
        total += np.sum((out - y[start:start + batch]) ** 2)
    return total / X.shape[0]


def rows_rebound(W, X):
    total = 0.0
    for x in X:
        x = np.tanh(x @ W)              # the loop's row, rebound to another length
        total += np.sum(x)
    return total


def test_a_shorter_last_minibatch_and_a_rebound_row_match_finite_differences():
    rng = np.random.default_rng(12)
    W1, b1, W2 = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(4)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    assert_grad_matches_fd(minibatch_loss, (W1, b1, W2, X, y), wrt=(0, 1, 2))
    assert_grad_matches_fd(rows_rebound, (rng.standard_normal((3, 5)), X))


def early_stopped_descent(w0, X, y, lr=0.1, tol=1e-3):
    w = w0.copy()
    for _ in range(100):
        r = X @ w - y                   # first bound in the loop ...
        g = X.T @ r / X.shape[0]
        w = w - lr * g
        if np.sqrt(g @ g) < tol:
            break
    r = X @ w - y                       # ... and rebound after it
    return r @ r


def bound_in_one_branch(x, z, flag):
    if flag:
        h = np.sin(x)
        z = z + np.sum(h)
    h = np.cos(z)                       # rebinds a name the branch may have left unbound
    return np.sum(h * h)


def test_rebinding_a_name_first_bound_in_a_loop_or_a_branch():
    rng = np.random.default_rng(13)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal(6)
    assert_grad_matches_fd(early_stopped_descent, (rng.standard_normal(3), X, y))
    for flag in (True, False):
        assert_grad_matches_fd(bound_in_one_branch, (np.linspace(0.1, 0.5, 4), np.linspace(0.2, 0.4, 3), flag),
                               wrt=(0, 1))


@MODES
def test_an_index_vector_of_length_one_is_broadcast_against_the_other(compiled):
    A = np.arange(12.0).reshape(3, 4) / 7.0
    assert_grad_matches_fd(picked_pairs, (A, np.array([1]), np.array([0, 2, -1])))
    g = srcdiff.grad(picked_pairs, compile=compiled)(A, np.array([0, 2, 1]), np.array([3]))
    assert np.count_nonzero(g) == 3 and np.count_nonzero(g[:, 3]) == 3
