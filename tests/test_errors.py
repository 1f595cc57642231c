"""Input srcdiff cannot differentiate: one test per case, each checking the SrcdiffError.

An error about the user's code must read

    <file>:<line>:<col>: <message>
        <the source line>
        <caret under col>
    hint: <hint>            (where srcdiff gives one)

The expected line is the one carrying the marker comment `# <- error` in the
function below (found with inspect.getsourcelines), so the tests survive edits to
this file. Errors about how the function is called (`wrt`, argument types) point
at the function's `def` line: srcdiff promises that every message names the
user's file, line and column (srcdiff/errors.py).
"""
import inspect
import math
import os
import re

import numpy as np
import pytest

import srcdiff
from srcdiff import SrcdiffError

THIS_FILE = os.path.abspath(__file__)
MARKER = "# <- error"
HEADER = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


def marked_line(fn, marker=MARKER):
    """The absolute line number of the (single) line of `fn` carrying `marker`."""
    lines, first = inspect.getsourcelines(fn)
    hits = [first + i for i, text in enumerate(lines) if marker in text]
    assert len(hits) == 1, f"{fn.__name__}: expected one {marker!r} line, found {len(hits)}"
    return hits[0]


def def_line(fn):
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, text in enumerate(lines) if text.lstrip().startswith("def "))


def file_line(number):
    with open(THIS_FILE) as handle:
        return handle.read().splitlines()[number - 1]


def check_error(error, line, message=None, hint=None, token=None):
    """Assert the SrcdiffError `error` is located at THIS_FILE:`line` and well formed.

    `message`: a substring of the message; `hint`: True (a hint must be present), a
    substring of the hint, or None (no requirement); `token`: the source text the
    caret must point at.
    """
    text = str(error)
    lines = text.splitlines()
    header = HEADER.match(lines[0])
    assert header, f"the first line is not `file:line:col: message`:\n{text}"
    assert os.path.basename(THIS_FILE) in header["file"], text
    assert os.path.abspath(header["file"]) == THIS_FILE, text
    assert int(header["line"]) == line, f"expected line {line}:\n{text}"
    col = int(header["col"])
    assert len(lines) >= 3, f"no source line and caret:\n{text}"
    assert lines[1] == "    " + file_line(line), f"the quoted source line is wrong:\n{text}"
    assert lines[2] == "    " + " " * (col - 1) + "^", f"bad caret line:\n{text}"
    if token is not None:
        assert file_line(line)[col - 1:].startswith(token), \
            f"the caret points at {file_line(line)[col - 1:]!r}, not {token!r}:\n{text}"
    if message is not None:
        assert message in header["message"], text
    hints = [ln for ln in lines if ln.startswith("hint: ")]
    if hint is True:
        assert hints and len(hints[0]) > len("hint: "), f"no hint:\n{text}"
    elif isinstance(hint, str):
        assert hints and hint in hints[0], f"expected a hint containing {hint!r}:\n{text}"
    return text


def lowering_error(fn, **kwargs):
    """grad(fn) must fail while reading fn; check the error at fn's marker line."""
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(fn, compile=False)
    return check_error(info.value, marked_line(fn), **kwargs)


def call_error(fn, args, wrt=0, line=None, **kwargs):
    """grad(fn) is accepted but calling it with `args` fails, the same way in both modes."""
    texts = []
    for compile in (False, True):
        g = srcdiff.grad(fn, wrt=wrt, compile=compile)
        with pytest.raises(SrcdiffError) as info:
            g(*args)
        texts.append(check_error(info.value, marked_line(fn) if line is None else line, **kwargs))
    assert texts[0] == texts[1], f"the modes disagree:\n{texts[0]}\n---\n{texts[1]}"
    return texts[0]


# ---- control flow ----------------------------------------------------------------------------
def loop_over_list(x):
    s = 0.0
    for v in [1.0, 2.0]:  # <- error
        s = s + v * x
    return s


def test_for_loop_over_a_list():
    lowering_error(loop_over_list, message="cannot iterate", hint="`enumerate(x)` or `zip(x, y)`",
                   token="[1.0, 2.0]")


def while_loop(x):
    s = x
    k = 0
    while k < 3:
        s = s * x
        k = k + 1
    return s


def test_while_loop_is_supported():
    # not an error: `while` loops are differentiated (x^4 here)
    assert srcdiff.grad(while_loop, compile=False)(1.5) == pytest.approx(4 * 1.5 ** 3, rel=1e-12)


def uses_break(x):
    s = 0.0
    for i in range(5):
        if i > 2:
            break
        s = s + x * x * i
    return s


def test_break_inside_a_loop_is_supported():
    # `break` used to be rejected; srcdiff now lowers it to flags (srcdiff/exits.py):
    # s = x^2 * (0 + 1 + 2), ds/dx = 6x
    assert srcdiff.grad(uses_break, compile=False)(1.5) == pytest.approx(9.0, rel=1e-12)
    assert srcdiff.check_grad(uses_break, 0.7, compile=False) < 1e-6


def early_return(x):
    y = x * 2.0
    return y
    z = y + 1.0  # <- error
    return z


def test_return_in_the_middle():
    lowering_error(early_return, message="after `return`", token="z = y + 1.0")


def bare_return_in_loop(x):
    for i in range(3):
        if x[i] > 0.0:
            return  # <- error
    return 0.0


def return_in_an_endless_loop_in_a_loop(x):
    for i in range(3):
        while True:
            return x * i  # <- error
    return x


def test_a_return_that_cannot_move_to_the_end():
    for fn in (bare_return_in_loop, return_in_an_endless_loop_in_a_loop):
        lowering_error(fn, message="this `return` cannot be moved to the end of the function",
                       hint="returns in branches and loops move to the end", token="return")


def no_return(x):  # <- error
    y = x * 2.0


def test_function_without_return():
    lowering_error(no_return, message="no `return`", hint=True, token="def no_return")


def array_condition(x):
    if x > 0.0:  # <- error
        y = x * 2.0
    else:
        y = x
    return np.sum(y)


def test_if_on_an_array_condition():
    # fine for a scalar x, an error once x is an array (known only at call time)
    assert srcdiff.grad(array_condition, compile=False)(1.0) == 2.0
    call_error(array_condition, (np.ones(3),), message="condition of `if` is an array",
               hint="np.where", token="if x > 0.0")


def zero_step(x):
    s = 0.0
    for i in range(0, 6, 0):  # <- error
        s = s + x * i
    return s


def test_a_zero_range_step():
    lowering_error(zero_step, message="the step of `range` must be a nonzero integer",
                   token="range(0, 6, 0)")


def membership_test(x):
    if x in (0.0, 1.0):  # <- error
        y = x * x
    else:
        y = x
    return y


def test_membership_comparison():
    lowering_error(membership_test, message="`is` and `in` comparisons", hint="==",
                   token="x in (0.0, 1.0)")


# ---- unsupported statements ------------------------------------------------------------------
def uses_try(x):
    try:  # <- error
        y = x * 2.0
    except ValueError:
        y = x
    return y


def test_try():
    lowering_error(uses_try, message="`try` blocks", token="try")


def uses_with(x):
    with np.errstate(all="ignore"):  # <- error
        y = x * 2.0
    return y


def test_with():
    lowering_error(uses_with, message="`with` blocks", token="with")


COUNTER = 0.0


def uses_global(x):
    global COUNTER  # <- error
    return x * COUNTER


def test_global():
    lowering_error(uses_global, message="`global`", token="global")


shadowed = 0.0     # a module global a function's own local shadows


def local_read_before_its_assignment(x):
    total = 0.0
    for i in range(x.shape[0]):
        if i > 0:
            total += np.exp(shadowed)  # <- error
        shadowed = x[i] * 2.0
    return total


def test_a_local_read_before_its_assignment_is_not_the_global_of_that_name():
    """Python makes `shadowed` local (it is assigned in the function), so the global is never read."""
    lowering_error(local_read_before_its_assignment, message="read before it is assigned",
                   token="shadowed", hint="before the loop")


def outer_of_a_matrix(X, y):
    return np.sum(np.sin(np.outer(X, y)))  # <- error


def test_outer_of_a_matrix_is_refused_not_flattened():
    call_error(outer_of_a_matrix, (np.ones((2, 2)), np.ones(3)), message="np.outer", hint="ravel")


def nested_def(x):
    def inner(v):  # <- error
        return v * 2.0
    return inner(x)


def test_nested_def():
    lowering_error(nested_def, message="nested function", token="def inner")


def recursive(x):
    if x > 1.0:
        y = recursive(x - 1.0) * x  # <- error
    else:
        y = x
    return y


def test_recursion():
    lowering_error(recursive, message="recursive call", hint=True, token="recursive(x - 1.0)")


# ---- unsupported expressions -----------------------------------------------------------------
def string_constant(x):
    label = "weight"  # <- error
    return x * 2.0


def test_string_constant():
    lowering_error(string_constant, message="strings are not supported", hint=True, token='"weight"')


def indexes_a_dict_by_name(params, x):
    return np.sum(params["w"] * x)  # <- error


def test_indexing_by_name_says_to_pass_arrays_as_arguments():
    lowering_error(indexes_a_dict_by_name, message="dicts indexed by name",
                   hint="pass arrays as arguments of their own", token='"w"')


def reads_an_attribute(model, x):
    return np.sum(model.w * x)  # <- error


def test_an_attribute_says_to_pass_it_as_an_argument():
    lowering_error(reads_an_attribute, message="attribute `.w`", hint="pass `model.w` as an argument",
                   token="model.w")


def sums_by_keyword(x):
    return np.sum(a=x)  # <- error


def test_a_reduction_given_its_array_by_keyword():
    lowering_error(sums_by_keyword, message="needs an array as its first argument",
                   hint="by position: `np.sum(x)`", token="np.sum")


def max_of_two_arrays(x, y):
    return np.sum(np.max(x, y))  # <- error


def test_max_of_two_arrays_points_to_maximum():
    lowering_error(max_of_two_arrays, message="the axis to reduce along",
                   hint="`np.maximum(a, b)`", token="y")


def cumsum_along_an_axis(A):
    return np.sum(np.cumsum(A, axis=0))  # <- error


def test_cumsum_along_an_axis_says_it_is_flattened():
    lowering_error(cumsum_along_an_axis, message="takes one argument", hint="flattened",
                   token="np.cumsum")


def doubled_sum(x):
    return np.sum(x * 2.0)


def test_an_error_about_the_code_shows_few_of_srcdiffs_own_frames():
    import traceback
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(max_of_two_arrays)
    assert len(traceback.extract_tb(info.value.__traceback__)) <= 3
    g = srcdiff.grad(doubled_sum, compile=False)
    with pytest.raises(SrcdiffError, match="is a list") as info:
        g([1.0, 2.0])
    assert len(traceback.extract_tb(info.value.__traceback__)) <= 6


def uses_dict(x):
    d = {"a": x}  # <- error
    return d["a"]


def test_dict():
    lowering_error(uses_dict, message="dicts", hint=True, token="{")


def list_comprehension(x):
    ys = [x * k for k in range(3)]  # <- error
    return ys[0]


def test_list_comprehension():
    lowering_error(list_comprehension, message="list comprehensions", hint=True, token="[x * k")


def uses_lambda(x):
    square = lambda v: v * v  # <- error  # noqa: E731
    return square(x)


def test_lambda_inside_the_function():
    lowering_error(uses_lambda, message="lambdas", hint=True, token="lambda")


def unknown_numpy(x):
    return np.sum(np.linalg.eigh(x)[0])  # <- error


def test_unknown_numpy_function():
    lowering_error(unknown_numpy, message="np.linalg.eigh", hint=True, token="np.linalg.eigh")


def einsum_product(A, B):
    return np.sum(np.einsum("ij,jk->ik", A, B))  # <- error


def weighted_average(x, w):
    return np.average(x, weights=w)  # <- error


def test_common_unsupported_functions_say_how_to_write_them():
    lowering_error(einsum_product, message="np.einsum", hint="A @ B", token="np.einsum")
    lowering_error(weighted_average, message="np.average", hint="np.sum(w * x) / np.sum(w)",
                   token="np.average")


def unknown_method_on_expression(x):
    return np.sin(x).nonzero()[0]  # <- error


def test_unknown_method_on_an_expression():
    lowering_error(unknown_method_on_expression, message="`.nonzero()`", hint=".sum()",
                   token="np.sin(x).nonzero")


def method_on_a_number(x):
    return (2.0).sum() * np.sum(x)  # <- error


def test_method_on_a_number():
    lowering_error(method_on_a_number, message="is a number", hint="arrays", token="(2.0).sum")


def assert_on_an_array(x):
    assert x > 0.0  # <- error
    return np.sum(x)


def test_assert_on_an_array():
    with pytest.raises(SrcdiffError, match="the condition of `assert` is an array"):
        srcdiff.grad(assert_on_an_array)(np.ones(3))


def array_of_a_number(x):
    return np.sum(np.array(2.0) * x)  # <- error


def array_of_arrays_and_numbers(x):
    return np.sum(np.array([x, 1.0]))  # <- error


def array_of_ragged_rows(x):
    return np.sum(np.array([[x, x], [x]]))  # <- error


def test_np_array_takes_numbers():
    lowering_error(array_of_a_number, message="of a number is not supported", hint="np.array([x])",
                   token="np.array(2.0)")
    lowering_error(array_of_ragged_rows, message="the rows of this array differ in length",
                   token="[[x, x], [x]]")
    with pytest.raises(SrcdiffError, match="np.array takes numbers, rows of numbers or arrays of "
                                           "one rank, and these are mixed"):
        srcdiff.grad(array_of_arrays_and_numbers)(np.ones(3))


def stack_of_numbers(x):
    return np.sum(np.stack((x[0], x[1])))  # <- error


def concatenate_of_one_array(x):
    return np.sum(np.concatenate(x))  # <- error


def test_joining_takes_a_list_of_arrays():
    with pytest.raises(SrcdiffError, match="np.stack takes arrays of one rank") as info:
        srcdiff.grad(stack_of_numbers)(np.ones(3))
    assert "np.array([a, b, ...])" in str(info.value)
    lowering_error(concatenate_of_one_array, message="takes a list or tuple of arrays",
                   token="np.concatenate(x)")


def max_over_two_axes(x):
    return np.sum(np.max(x, axis=(0, 1)))  # <- error


def test_max_over_a_tuple_of_axes():
    lowering_error(max_over_two_axes, message="only sums and means reduce over several axes",
                   hint="one axis at a time", token="(0, 1)")


def sum_over_mixed_axes(x):
    return np.sum(np.sum(x, axis=(0, -1)))  # <- error


def sum_over_a_repeated_axis(x):
    return np.sum(np.sum(x, axis=(1, 1)))  # <- error


def test_sums_over_mixed_or_repeated_axes():
    lowering_error(sum_over_mixed_axes, message="mixes axes counted from the start and from the end",
                   hint="count them all from the start", token="np.sum(x, axis=(0, -1))")
    lowering_error(sum_over_a_repeated_axis, message="must name distinct axes",
                   token="np.sum(x, axis=(1, 1))")


def write_by_chained_indexing(x):
    B = np.zeros((2, 2))
    for i in range(2):
        B[i][0] = x[i]  # <- error
    return np.sum(B * B)


def test_a_write_by_chained_indexing_asks_for_one_index():
    lowering_error(write_by_chained_indexing, message="chained indexing (`B[i][...] = ...`)",
                   hint="`B[i, j] = ...` for `B[i][j] = ...`", token="B[i]")


# ---- signatures ------------------------------------------------------------------------------
def keyword_only(x, *, scale=2.0):  # <- error
    return x * scale


def test_keyword_only_arguments():
    lowering_error(keyword_only, message="keyword-only", hint=True, token="scale")


def star_args(x, *rest):  # <- error
    return x * 2.0


def test_star_args():
    lowering_error(star_args, message="`*args`", hint=True, token="rest")


# ---- results ---------------------------------------------------------------------------------
def array_result(x):
    return x * 2.0  # <- error


def test_non_scalar_return_is_an_error_at_call_time():
    assert srcdiff.grad(array_result, compile=False)(1.5) == 2.0  # a scalar x is fine
    call_error(array_result, (np.ones(3),), message="returns a 1-D array", hint="np.sum",
               token="return")


# ---- how the function is called: located at its `def` line ---------------------------------------
def two_args(x, n):
    return np.sum(x) * n


def test_wrt_names_a_missing_argument():
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(two_args, wrt="z")
    text = check_error(info.value, def_line(two_args), message="`z`", token="def two_args")
    assert "two_args" in text and "x, n" in text


def test_wrt_names_an_int_argument():
    call_error(two_args, (np.ones(3), 3), wrt="n", line=def_line(two_args),
               message="with respect to `n`", hint=True, token="def two_args")


def test_integer_array_for_a_wrt_argument():
    call_error(two_args, (np.arange(3), 2), wrt=0, line=def_line(two_args),
               message="with respect to `x`", hint="np.asarray", token="def two_args")


def test_list_argument():
    call_error(two_args, ([1.0, 2.0], 2), wrt=0, line=def_line(two_args),
               message="`x` is a list", hint="np.asarray", token="def two_args")


# ---- things that are not source-level functions -----------------------------------------------
def test_builtin_passed_to_grad():
    for fn in (np.sin, math.exp, abs):
        with pytest.raises(SrcdiffError) as info:
            srcdiff.grad(fn)
        text = str(info.value)
        assert "not a plain Python function" in text
        assert "\nhint: " in text


def test_lambda_passed_to_grad():
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(lambda x: x * 2.0)
    text = str(info.value)
    assert "lambda" in text
    assert "\nhint: " in text and "def" in text.split("\nhint: ")[1]


def test_lambda_on_a_continuation_line_passed_to_grad():
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(
            lambda x: x * 2.0)
    assert "\nhint: " in str(info.value)


# ---- arrays shared between names (NumPy views and aliases) ------------------------------------
def alias_then_augmented_assign(x):
    a = x * 2.0
    b = a
    a += x * x
    return np.sum(b * x)  # <- error


def test_alias_read_after_augmented_assign():
    # NumPy's `a += ...` changes the array `b` also names: a clear error, not another function
    call_error(alias_then_augmented_assign, (np.ones(3),),
               message="`b` shares its data with `a`, which line", hint="a = a + ...",
               token="b * x")


def slice_then_write(x):
    buf = np.zeros(3)
    head = buf[0:2]
    buf[0] = x[0] * 2.0
    return np.sum(head * x[1:])  # <- error


def test_slice_read_after_its_array_is_written():
    call_error(slice_then_write, (np.ones(3),), message="`head` shares its data with `buf`",
               hint=".copy()", token="head * x[1:]")


def write_through_a_row_view(x):
    B = np.outer(x, x)
    r = B[0]
    r *= 2.0
    return np.sum(B * x[0])  # <- error


def test_a_write_through_a_view_names_the_array_to_write_into():
    call_error(write_through_a_row_view, (np.ones(3),), message="`B` shares its data with `r`",
               hint="write into `B` itself (`B[...] = ...`) rather than through `r`",
               token="B * x[0]")


def write_through_a_view_of_an_argument(x):
    head = x[0:2]
    head[0] = 1.0  # <- error
    return np.sum(x * x)


def test_write_through_a_view_into_a_differentiated_argument():
    call_error(write_through_a_view_of_an_argument, (np.ones(3),),
               message="writes into `x` through `head`", hint="x = x.copy()", token="head[0]")


def rebinding_is_not_aliasing(x):
    a = x * 2.0
    b = a
    a = a + x * x
    return np.sum(b * x) + np.sum(a)


def copy_argument_then_write(x):
    x = x.copy()
    for i in range(x.shape[0]):
        x[i] = x[i] * x[i]
    return np.sum(x * x)


@pytest.mark.parametrize("compile", [False, True])
def test_copies_and_rebinding_are_accepted(compile):
    x = np.array([0.3, -0.5, 0.7])
    assert srcdiff.check_grad(rebinding_is_not_aliasing, x, compile=compile) < 1e-6
    assert srcdiff.check_grad(copy_argument_then_write, x, compile=compile) < 1e-6
    np.testing.assert_allclose(srcdiff.grad(copy_argument_then_write, compile=compile)(x),
                               4 * x ** 3, rtol=1e-12)


# ---- shapes that do not fit together, found when the gradient runs ----------------------------
def dense_layer(W, b, X):
    h = X @ W
    z = h + b  # <- error
    return np.sum(z * z)


def matmul_layer(W, X):
    h = X @ W  # <- error
    return np.sum(h)


@pytest.mark.parametrize("compile", [False, True])
def test_mismatched_shapes_at_call_time(compile):
    # the message names the user's line that fails with these shapes, and the shapes
    for fn, args in ((dense_layer, (np.ones((3, 4)), np.ones(5), np.ones((2, 3)))),
                     (matmul_layer, (np.ones((3, 4)), np.ones((2, 5))))):
        g = srcdiff.grad(fn, compile=compile)
        with pytest.raises(SrcdiffError) as info:
            g(*args)
        text = check_error(info.value, marked_line(fn), message="failed on these arguments",
                           hint="shapes")
        assert "W: float64[3, 4]" in text and "ValueError" in text


@pytest.mark.parametrize("compile", [False, True])
def test_mismatched_shapes_after_good_calls(compile):
    # the same error from the forward and the gradient, also once they run on a fast path
    good = (np.ones((3, 4)), np.ones(4), np.ones((2, 3)))
    bad = (np.ones((3, 4)), np.ones(5), np.ones((2, 3)))
    g = srcdiff.grad(dense_layer, compile=compile)
    for call in (g.forward, g):
        call(*good)
        call(*good)
        with pytest.raises(SrcdiffError) as info:
            call(*bad)
        text = check_error(info.value, marked_line(dense_layer), message="failed on these arguments",
                           hint="shapes")
        assert "b: float64[5]" in text and "ValueError" in text


def pair_loop(pos):
    e = 0.0
    for i in range(pos.shape[0]):
        for j in range(i + 1, pos.shape[0]):
            dz = pos[j, 2] - pos[i, 0]
            e += dz * dz
    return e





def test_backward_failure_on_arguments_the_function_fails_on():
    # the gradient of pair_loop runs no forward loop: its bad index fails in the backward,
    # but the function fails on it too, so the arguments are blamed (compiled code does
    # not check indices, as numba does not)
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(pair_loop, compile=False)(np.ones((3, 2)))
    text = str(info.value)
    assert "`pair_loop` failed on these arguments (pos: float64[3, 2])" in text, text
    assert "IndexError" in text and "shapes fit together" in text, text


def reshape_a_scalar(x):
    return np.sum((x[0] * 2.0).reshape(1) * x)  # <- error


def transpose_a_scalar(x):
    return np.sum((x[0] * 2.0).T * x)


def test_reshape_of_a_scalar():
    # `.T` of a NumPy scalar is the scalar (accepted); `.reshape` of one is rejected
    call_error(reshape_a_scalar, (np.ones(3),), message="`.reshape` needs an array",
               hint="x[0:1]", token="(x[0] * 2.0)")
    for compile in (False, True):
        assert srcdiff.check_grad(transpose_a_scalar, np.array([0.3, 0.5, 0.9]),
                                  compile=compile) < 1e-6


@pytest.mark.parametrize("dtype", [np.complex128, np.float16])
def test_array_of_an_unsupported_dtype(dtype):
    call_error(two_args, (np.ones(3, dtype), 2), wrt=0, line=def_line(two_args),
               message=f"an array of {np.dtype(dtype)}", hint="astype", token="def two_args")


def pair(x):
    return x * 2.0, x + 1.0


def several_values_not_unpacked(x):
    y = pair(x)
    return np.sum(y)


def returns_a_tuple(x):
    return x, x  # <- error


def test_several_values_kept_in_one_name_are_an_array_of_them():
    # as NumPy reads np.sum((a, b)): the values stacked
    for compile in (True, False):
        np.testing.assert_allclose(srcdiff.grad(several_values_not_unpacked, compile=compile)(
            np.array([0.5, 2.0])), [3.0, 3.0])


def test_grad_of_a_function_returning_a_tuple():
    lowering_error(returns_a_tuple, message="returns a tuple", hint=True, token="x, x")


HELPER_MODULE = '''import numpy as np


def project(A, v):
    return A @ v
'''
CALLER_MODULE = '''import numpy as np
from errors_helper_module import project


def uses_a_helper_from_another_file(A, v):
    w = project(A, v)
    return np.sum(np.sin(w))
'''


def test_a_run_time_error_in_a_helper_of_another_file_names_that_file(tmp_path, monkeypatch):
    (tmp_path / "errors_helper_module.py").write_text(HELPER_MODULE)
    (tmp_path / "errors_caller_module.py").write_text(CALLER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import errors_caller_module
    for compile in (True, False):
        g = srcdiff.grad(errors_caller_module.uses_a_helper_from_another_file, compile=compile)
        with pytest.raises(SrcdiffError) as info:
            g(np.ones((2, 3)), np.ones(4))
        message = str(info.value)
        assert "errors_helper_module.py:5:" in message and "return A @ v" in message, message


def validates_its_input(x, k):
    if x.shape[0] != 3:
        raise ValueError("x must have 3 entries")  # <- error
    return np.sum(x * x) * k


def raises_in_its_other_branch(x):
    if x > 0.0:
        return x * x
    else:
        raise ValueError("x must be positive")


@pytest.mark.parametrize("compile", [False, True])
def test_a_raise_runs_in_the_forward_and_the_gradient(compile):
    g = srcdiff.grad(validates_its_input, compile=compile)
    np.testing.assert_allclose(g(np.ones(3), 2.0), [4.0, 4.0, 4.0])
    with pytest.raises(SrcdiffError) as info:
        g(np.ones(4), 2.0)
    check_error(info.value, marked_line(validates_its_input), message="ValueError: x must have 3 entries")
    h = srcdiff.grad(raises_in_its_other_branch, compile=compile)
    assert h(2.0) == 4.0
    with pytest.raises(SrcdiffError, match="ValueError: x must be positive"):
        h(-1.0)


def returns_an_array_on_one_path(x, k):
    if k > 0:
        return np.sum(x * x)
    return x * 2.0  # <- error


def test_returns_of_different_kinds_are_named_as_returns():
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(returns_an_array_on_one_path)(np.ones(3), 1)
    check_error(info.value, marked_line(returns_an_array_on_one_path),
                message="this `return` gives a float64[1d], and an earlier one a float64")


def test_a_raised_error_and_a_shape_error_are_also_the_python_exception():
    for compile in (True, False):
        with pytest.raises(ValueError, match="x must have 3 entries"):
            srcdiff.grad(validates_its_input, compile=compile)(np.ones(4), 2.0)
        with pytest.raises(ValueError):
            srcdiff.grad(adds_two_arrays, compile=compile)(np.ones(4), np.ones(3))


def adds_two_arrays(x, y):
    return np.sum(x + y)
