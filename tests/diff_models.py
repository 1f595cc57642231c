"""Model functions shared by the tests (and by the subprocesses test_emit.py starts).

The golden files in tests/golden/ hold the source srcdiff generates for these
functions; that source quotes their lines, so editing this file means
regenerating the golden files (SRCDIFF_UPDATE_GOLDEN=1).
"""
import numpy as np


def neuron(w, x):
    z = w[0] * x[0] + w[1] * x[1] + w[2]
    return 1.0 / (1.0 + np.exp(-z))


def loss(W1, b1, W2, b2, X, Y):
    h = np.maximum(X @ W1 + b1, 0.0)
    z = h @ W2 + b2
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * logp) / X.shape[0]


def seed_neuron_inputs():
    return np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])


def mlp_inputs(seed=0, batch=16, sizes=(10, 8, 3), dtype=np.float64):
    """Random weights and data for `loss`: batch 16, layers 10-8-3, one-hot targets."""
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = sizes
    W1 = rng.normal(0.0, 0.5, (n_in, n_hidden))
    b1 = rng.normal(0.0, 0.1, n_hidden)
    W2 = rng.normal(0.0, 0.5, (n_hidden, n_out))
    b2 = rng.normal(0.0, 0.1, n_out)
    X = rng.normal(0.0, 1.0, (batch, n_in))
    Y = np.eye(n_out)[rng.integers(0, n_out, batch)]
    return tuple(a.astype(dtype) for a in (W1, b1, W2, b2, X, Y))


def energy(pos):
    """Lennard-Jones energy: the double loop of the loops issue."""
    n = pos.shape[0]
    e = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = pos[i, 0] - pos[j, 0]
            dy = pos[i, 1] - pos[j, 1]
            dz = pos[i, 2] - pos[j, 2]
            r2 = dx * dx + dy * dy + dz * dz
            s6 = 1.0 / (r2 * r2 * r2)
            e += 4.0 * (s6 * s6 - s6)
    return e
