"""Neural-network helpers with fused gradient rules.

Each is a plain NumPy function (so it runs anywhere); inside a function
differentiated by srcdiff, a call to it becomes one gate with its own rule:
`relu` routes the gradient (0 at the kink), `sigmoid` reuses its output
(`s * (1 - s)`), `log_softmax` / `softmax_cross_entropy` use the fused
`softmax(z) - y` form.
"""
import numpy as np


def relu(x):
    """max(x, 0) elementwise; its gradient is 1 where x > 0 and 0 elsewhere (0 at x == 0)."""
    return np.maximum(x, 0.0)


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


def logsumexp(z, axis=None, keepdims=False):
    """log(sum(exp(z), axis)), computed stably."""
    m = np.max(z, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else out.reshape(())[()]


def log_softmax(z, axis=-1):
    """z - logsumexp(z, axis, keepdims=True)."""
    return z - logsumexp(z, axis=axis, keepdims=True)


def softmax(z, axis=-1):
    """exp(log_softmax(z, axis))."""
    return np.exp(log_softmax(z, axis=axis))


def softmax_cross_entropy(z, y):
    """-sum(y * log_softmax(z, axis=-1)): the cross-entropy of targets y against logits z."""
    return -np.sum(y * log_softmax(z, axis=-1))
