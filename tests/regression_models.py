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


def shape_read_in_loop(x, w):
    # u's shape (not value) undoes the broadcast of u + wt; u is also stored into a
    # buffer, whose backward reads it; its shape changes with t
    buf = np.zeros((2, x.shape[0]))
    s = 0.0
    for t in range(2):
        u = np.sin(x[0:t + 2]) * (t + 1.0)
        wt = w[0:t + 2]
        v = u + wt
        s += np.sum(v * v)
        buf[t, 0:t + 2] = u
    return s + np.sum(buf * buf)


def shape_read_and_nested_add(x, w):
    s = 0.0
    for t in range(2):
        u = np.cos(x[0:t + 2]) * (t + 2.0)
        wt = w[0:t + 2]
        v = u + wt
        s += np.sum(v * v)
        for j in range(2):
            z = u + wt * j
            s += np.sum(z)
    return s
