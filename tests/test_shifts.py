"""A log-sum-exp's stabilising shift m has a zero adjoint: `m + log(sum(exp(a - m)))` does
not depend on m. The backward then keeps no tie record for a max shift. Every function here
is checked against finite differences in both modes, the ones the rule must not touch too:
a shift also read elsewhere, an accumulator that does not start at zero or is read again,
a sum taken across different shifts."""
import numpy as np
import pytest

import srcdiff

from conftest import assert_grad_matches_fd

RNG = np.random.default_rng(7)
A = RNG.standard_normal((6, 4))
TIED = np.array([[0.5, 1.5, 1.5, -0.2], [2.0, 2.0, 2.0, 2.0], [0.1, -1.0, 0.3, 0.3]])


def looped_logsumexp(a):
    total = 0.0
    for i in range(a.shape[0]):
        m = np.max(a[i])
        s = 0.0
        for k in range(a.shape[1]):
            s += np.exp(a[i, k] - m)
        total += m + np.log(s)
    return total


def looped_with_branch(a):
    total = 0.0
    for i in range(a.shape[0]):
        m = a[i, 0]
        for k in range(a.shape[1]):
            if a[i, k] > m:
                m = a[i, k]
        s = 0.0
        for k in range(a.shape[1]):
            if k % 2 == 0:
                s = s + np.exp(a[i, k] - m)
            else:
                s = s + np.exp(2.0 * a[i, k] - m)
        total = total - (np.log(s) + m)
    return total


def vector_logsumexp(a):
    row = a[0] * a[1]
    m = np.max(row)
    return m + np.log(np.sum(np.exp(row - m)))


def per_row_logsumexp(a):
    total = 0.0
    for i in range(a.shape[0]):
        m = np.max(a[i])
        total += m + np.log(np.sum(np.exp(a[i] - m)))
    return total


SHIFTED = [looped_logsumexp, looped_with_branch, vector_logsumexp, per_row_logsumexp]


def shift_read_again(a):
    m = np.max(a[0])
    return m + np.log(np.sum(np.exp(a[0] - m))) + 0.3 * m


def accumulator_not_from_zero(a):
    m = np.max(a[0])
    s = 1.0
    for k in range(a.shape[1]):
        s += np.exp(a[0, k] - m)
    return m + np.log(s)


def accumulator_read_again(a):
    m = np.max(a[0])
    s = 0.0
    for k in range(a.shape[1]):
        s += np.exp(a[0, k] - m)
    return m + np.log(s) + 0.1 * s


def sum_across_shifts(a):
    s = 0.0
    m = 0.0
    for i in range(a.shape[0]):
        m = np.max(a[i])
        s += np.exp(a[i, 0] - m)
    return m + np.log(s)


def shift_the_other_way(a):
    m = np.max(a[0])
    return m + np.log(np.sum(np.exp(m - a[0])))


def partial_sum(a):
    m = np.max(a)
    return m + np.log(np.sum(np.exp(a - m), axis=0)[0])


def log_sum_exp_computed_but_sum_returned(a):
    m = np.max(a[0])
    s = np.sum(np.exp(a[0] - m))
    unused = m + np.log(s)
    return s


def log_term_returned(a):
    m = np.max(a[0])
    log_s = np.log(np.sum(np.exp(a[0] - m)))
    positive = (m + log_s) > 0.0
    return log_s


def accumulator_returned(a):
    m = a[0, 1]
    s = 0.0
    for k in range(a.shape[1]):
        s += np.exp(a[0, k] - m)
    lse = m + np.log(s)
    return s


KEPT = [log_sum_exp_computed_but_sum_returned, log_term_returned, accumulator_returned,
        shift_read_again, accumulator_not_from_zero, accumulator_read_again, sum_across_shifts,
        shift_the_other_way, partial_sum]


@pytest.mark.parametrize("fn", SHIFTED, ids=lambda f: f.__name__)
@pytest.mark.parametrize("data", [A, TIED], ids=["random", "tied"])
def test_cancelling_shifts_give_the_gradient_even_at_ties(fn, data):
    """A log-sum-exp is smooth where its max ties, so finite differences hold there too."""
    assert_grad_matches_fd(fn, (data.copy(),))


@pytest.mark.parametrize("fn", KEPT, ids=lambda f: f.__name__)
def test_shifts_that_do_not_cancel_give_the_gradient(fn):
    assert_grad_matches_fd(fn, (A.copy(),))


@pytest.mark.parametrize("fn", SHIFTED, ids=lambda f: f.__name__)
def test_a_cancelling_shift_gets_no_adjoint(fn):
    backward = srcdiff.grad(fn).source_for(A).split("# backward")[1]
    assert "dm" not in backward.replace("dmu", "")
    assert "tie_share" not in backward and "extremes" not in backward


@pytest.mark.parametrize("fn", [shift_read_again, accumulator_not_from_zero, accumulator_read_again,
                                sum_across_shifts], ids=lambda f: f.__name__)
def test_a_shift_that_does_not_cancel_keeps_its_adjoint(fn):
    backward = srcdiff.grad(fn).source_for(A).split("# backward")[1]
    assert "dm " in backward and "tie_share" in backward
