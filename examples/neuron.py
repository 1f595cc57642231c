"""A single sigmoid neuron, differentiated by srcdiff.

This is the classic example from CS231n's notes on backpropagation:

    f(w, x) = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))

with w = [2, -3, -3] and x = [-1, -2].  The value is 0.73 and the gradients
are dw = [-0.20, -0.39, 0.20], dx = [0.39, -0.59].

`@srcdiff.value_and_grad` reads the source of `neuron`, writes a backward pass
for it, compiles both with numba, and makes `neuron(w, x)` return
(value, (dw, dx)).  The generated module is printed at the end: it is plain,
readable Python, one statement per gate.
"""
import numpy as np

import srcdiff


@srcdiff.value_and_grad(wrt=("w", "x"))
def neuron(w, x):
    z = w[0] * x[0] + w[1] * x[1] + w[2]
    return 1.0 / (1.0 + np.exp(-z))


def rounded(a):
    """An array printed with two decimals, e.g. [-0.20, -0.39, 0.20]."""
    return "[" + ", ".join(f"{v:.2f}" for v in a) + "]"


def main():
    w = np.array([2.0, -3.0, -3.0])
    x = np.array([-1.0, -2.0])

    value, (dw, dx) = neuron(w, x)

    print(f"f(w, x) = {value:.2f}")
    print(f"dw = {rounded(dw)}")
    print(f"dx = {rounded(dx)}")
    print()
    print("Generated forward and backward:")
    print(neuron.source)


if __name__ == "__main__":
    main()
