"""Train a two-layer ReLU network on the 3-class spiral, with srcdiff gradients.

The data set is the classic one from CS231n: three interleaved spiral arms of
100 points each in 2-D, with a little angular noise.  A linear classifier
gets about 50 % of them right; a small MLP (100 ReLU hidden units) separates
them almost perfectly.

The loss (softmax cross-entropy plus a small L2 penalty) is written as plain
NumPy.  `srcdiff.value_and_grad` reads its source, generates a backward pass
and compiles both with numba; the training loop is ordinary full-batch
gradient descent.  The generated backward is printed at the end.

    python examples/mlp_spiral.py [--steps N] [--quiet]
"""
import argparse
import time

import numpy as np

import srcdiff

REG = 1e-3  # L2 regularisation strength


def loss(W1, b1, W2, b2, X, Y):
    h = np.maximum(X @ W1 + b1, 0.0)
    z = h @ W2 + b2
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    data_loss = -np.sum(Y * logp) / X.shape[0]
    reg_loss = 0.5 * REG * (np.sum(W1 * W1) + np.sum(W2 * W2))
    return data_loss + reg_loss


def spiral(points_per_class=100, classes=3, noise=0.2, seed=0):
    """The CS231n spiral: X is (N*K, 2), labels are 0..K-1."""
    rng = np.random.default_rng(seed)
    X = np.zeros((points_per_class * classes, 2))
    labels = np.zeros(points_per_class * classes, dtype=np.int64)
    for j in range(classes):
        rows = slice(points_per_class * j, points_per_class * (j + 1))
        r = np.linspace(0.0, 1.0, points_per_class)
        t = np.linspace(j * 4.0, (j + 1) * 4.0, points_per_class)
        t = t + rng.standard_normal(points_per_class) * noise
        X[rows] = np.column_stack([r * np.sin(t), r * np.cos(t)])
        labels[rows] = j
    return X, labels


def predict(W1, b1, W2, b2, X):
    h = np.maximum(X @ W1 + b1, 0.0)
    return np.argmax(h @ W2 + b2, axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="gradient steps (default 3000)")
    parser.add_argument("--lr", type=float, default=1.0, help="learning rate (default 1.0)")
    parser.add_argument("--hidden", type=int, default=100, help="hidden units (default 100)")
    parser.add_argument("--quiet", action="store_true", help="do not print the generated code")
    args = parser.parse_args()

    X, labels = spiral()
    classes = labels.max() + 1
    Y = np.eye(classes)[labels]  # one-hot targets

    # He initialisation: standard deviation sqrt(2 / fan_in).
    rng = np.random.default_rng(1)
    inputs = X.shape[1]
    W1 = rng.standard_normal((inputs, args.hidden)) * np.sqrt(2.0 / inputs)
    b1 = np.zeros(args.hidden)
    W2 = rng.standard_normal((args.hidden, classes)) * np.sqrt(2.0 / args.hidden)
    b2 = np.zeros(classes)

    loss_and_grads = srcdiff.value_and_grad(loss, wrt=("W1", "b1", "W2", "b2"))

    start = time.perf_counter()
    loss_and_grads(W1, b1, W2, b2, X, Y)  # first call: generate and compile
    print(f"generated and compiled the gradient in {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    report_every = max(args.steps // 10, 1)
    for step in range(args.steps + 1):
        value, (dW1, db1, dW2, db2) = loss_and_grads(W1, b1, W2, b2, X, Y)
        if step % report_every == 0 or step == args.steps:
            accuracy = np.mean(predict(W1, b1, W2, b2, X) == labels)
            print(f"step {step:5d}  loss {value:.4f}  accuracy {100 * accuracy:5.1f} %")
        if step == args.steps:
            break
        W1 -= args.lr * dW1
        b1 -= args.lr * db1
        W2 -= args.lr * dW2
        b2 -= args.lr * db2
    elapsed = time.perf_counter() - start

    accuracy = np.mean(predict(W1, b1, W2, b2, X) == labels)
    print(f"{args.steps} steps in {elapsed:.1f} s ({1e6 * elapsed / max(args.steps, 1):.0f} us per step)")
    print(f"final training accuracy: {100 * accuracy:.1f} %")
    if not args.quiet:
        print()
        print("Generated forward and backward:")
        print(loss_and_grads.source)
    assert accuracy > 0.95, f"training accuracy {100 * accuracy:.1f} % is not over 95 %"


if __name__ == "__main__":
    main()
