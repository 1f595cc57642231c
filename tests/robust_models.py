"""Functions for the robustness tests (srcdiff reads their source from this file)."""
import numpy as np


def root_sum(x):
    y = np.sqrt(x)
    return np.sum(y * 2.0)


def smooth(x, w):
    return np.sum(np.tanh(x * w) * x)
