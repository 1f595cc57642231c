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


def swap_in_loop(x, y):
    a = x
    b = y * 1.0
    for t in range(3):
        a, b = b, a
        a = a * 2.0
    return a * 3.0 + b


def swap_helper(a, b):
    return b, a


def swap_through_helper(x, y):
    a, b = x, y
    for t in range(3):
        a, b = swap_helper(a, b)
        a = a * 2.0
    return a * 3.0 + b


def swapped_buffers(u0, c):
    n = u0.shape[0]
    u = u0.copy()
    un = np.zeros_like(u0)
    for t in range(4):
        for i in range(1, n - 1):
            un[i] = u[i] + c * (u[i + 1] - 2.0 * u[i] + u[i - 1])
        un[0] = u[0]
        un[n - 1] = u[n - 1]
        u, un = un, u
    return np.sum(u * u)


def copied_buffers(u, c):
    n, m = u.shape
    v = u.copy()
    for t in range(3):
        w = v.copy()
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                w[i, j] = v[i, j] + c * (v[i + 1, j] + v[i - 1, j] + v[i, j + 1] + v[i, j - 1]
                                         - 4.0 * v[i, j])
        v = w
    return np.sum(v ** 2)


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
