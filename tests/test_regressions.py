"""Gradients that were once wrong, each checked against finite differences in both modes."""
import numpy as np
import pytest

from conftest import assert_grad_matches_fd
from regression_models import repeated_sums, reused_adjoint_in_loop


def test_adjoints_shared_by_unbroadcast_are_not_changed_in_place():
    # `unbroadcast` returns its input when shapes match; an in-place `+=` on the result
    # once doubled the gradient of (x + x) + (x + x)
    assert_grad_matches_fd(repeated_sums, (np.array([0.3, 0.5]),), 0)


@pytest.mark.parametrize("wrt", [0, 1, (0, 1)])
def test_loop_carried_array_with_residual_path(wrt):
    x, w = np.array([0.2, -0.4, 0.7]), np.array([1.1, 0.5, -0.8])
    assert_grad_matches_fd(reused_adjoint_in_loop, (x, w), wrt)
