"""Functions for the robustness tests (srcdiff reads their source from this file)."""
import numpy as np


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
