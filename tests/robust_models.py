"""Functions for the robustness tests (srcdiff reads their source from this file)."""
import numpy as np

import srcdiff


def root_sum(x):
    y = np.sqrt(x)
    return np.sum(y * 2.0)


def smooth(x, w):
    return np.sum(np.tanh(x * w) * x)


def quotient(x, y):
    return x / y


def log_of(x):
    return np.sum(np.log(x))


def scalar_log_and_root(x):
    return np.log(x) + np.sqrt(x)


def quotient_sum(x, y):
    return np.sum(x / y)


# pairs whose gradients call runtime helpers made by one factory (the sum and the mean
# over an axis, the max and the min, the softmax and the log-softmax)
def column_sums(X):
    return np.sum(np.sum(X, axis=0) ** 2)


def column_means(X):
    return np.sum(np.mean(X, axis=0) ** 2)


def column_maxima(X):
    return np.sum(np.max(X, axis=0) ** 2)


def column_minima(X):
    return np.sum(np.min(X, axis=0) ** 2)


def largest(x):
    return np.max(x) ** 2


def smallest(x):
    return np.min(x) ** 2


def row_softmax(X):
    return np.sum(srcdiff.nn.softmax(X, axis=1) * X)


def row_log_softmax(X):
    return np.sum(srcdiff.nn.log_softmax(X, axis=1) * X)


FACTORY_PAIRS = [("column_sums", "column_means"), ("column_maxima", "column_minima"),
                 ("largest", "smallest"), ("row_softmax", "row_log_softmax")]
