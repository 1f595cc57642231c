"""Small functions that once gave wrong gradients (srcdiff reads their source from this file)."""
import numpy as np


def repeated_sums(x0):
    n = len(x0)
    v1 = np.sin(0.5 * np.ones((n, n)) + np.transpose(x0[0] * np.ones((n, n))))
    return np.sum((x0 + x0) + (x0 + x0))


def reused_adjoint_in_loop(x, w):
    h = x.copy()
    for t in range(3):
        h = np.tanh(h * w) + h
    return np.sum(h * h)
