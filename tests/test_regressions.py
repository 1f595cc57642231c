"""Gradients that were once wrong, each checked against finite differences in both modes."""
import numpy as np
import pytest

from conftest import assert_grad_matches_fd
import srcdiff
from regression_models import (copied_buffers, repeated_sums, reused_adjoint_in_loop,
                               shape_read_and_nested_add, shape_read_in_loop, swap_in_loop,
                               swap_through_helper, swapped_buffers)


def test_adjoints_shared_by_unbroadcast_are_not_changed_in_place():
    # `unbroadcast` returns its input when shapes match; an in-place `+=` on the result
    # once doubled the gradient of (x + x) + (x + x)
    assert_grad_matches_fd(repeated_sums, (np.array([0.3, 0.5]),), 0)


@pytest.mark.parametrize("wrt", [0, 1, (0, 1)])
def test_loop_carried_array_with_residual_path(wrt):
    x, w = np.array([0.2, -0.4, 0.7]), np.array([1.1, 0.5, -0.8])
    assert_grad_matches_fd(reused_adjoint_in_loop, (x, w), wrt)


@pytest.mark.parametrize("fn", [swap_in_loop, swap_through_helper])
def test_tuple_swap_in_a_loop(fn):
    # `a, b = b, a` once assigned `a` before reading it for `b` (both got b's value)
    assert fn(1.0, 10.0) == 122.0
    assert srcdiff.value_and_grad(fn, compile=False)(1.0, 10.0)[0] == 122.0
    assert_grad_matches_fd(fn, (1.0, 10.0), (0, 1))


def test_double_buffers_are_not_shared_data():
    # swapped and copied buffers are separate arrays: no aliasing error, right gradients
    rng = np.random.default_rng(3)
    assert_grad_matches_fd(swapped_buffers, (rng.normal(size=6), 0.2), (0, 1))
    assert_grad_matches_fd(copied_buffers, (rng.normal(size=(5, 4)), 0.1), (0, 1))


@pytest.mark.parametrize("f", [shape_read_in_loop, shape_read_and_nested_add])
def test_arrays_in_loops_read_for_their_shape_and_value(f):
    # an array whose shape undoes a broadcast is taped as its dims only when nothing in the
    # backward reads its value (a nested loop's adjoint set-up, a store into a slot)
    x, w = np.array([0.2, -0.4, 0.7]), np.array([1.1, 0.5, -0.8])
    assert_grad_matches_fd(f, (x, w), (0, 1))
