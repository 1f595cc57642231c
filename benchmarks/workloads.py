"""The six benchmark workloads, and workloads of the user's own loaded from files.

Each workload bundles:

* ``source``: the plain NumPy/Python function that srcdiff differentiates,
  written in numba style (explicit loops where loops are the natural way,
  whole-array NumPy operations otherwise).  It returns a float.
* ``wrt``: the names (or positions) of the arguments the gradient is taken with
  respect to, in the order every system returns its gradients.
* ``make_inputs(size, rng)``: a dict ``{argument name: value}`` with one entry
  per parameter of the source function.  Arrays are C-contiguous float64; a few
  arguments are Python ints (the pendulum's ``steps``).  Everything is built
  from ``rng`` only, so the same seed gives the same inputs in every process.
* ``sizes`` / ``quick_sizes``: the sizes run in normal and ``--quick`` mode,
  and ``representative``: the size used for the speed-up bar chart.

Nothing in this module imports numba, PyTorch or JAX.
"""

import importlib.util
import inspect
import math
import os
import sys

import numpy as np


class Workload:
    """One benchmark problem.  Besides the source, wrt, input builder and sizes, a workload
    may bring its own references: ``gradient`` and ``forward`` (a hand-written gradient,
    returning one array per ``wrt`` name, and forward; without them every system's gradient
    is checked by finite differences of ``source``), and ``peers``, a dict from "pytorch",
    "jax" or "autograd" to the same math written with that library (a function of the
    source's parameters returning a scalar; arrays come as tensors, JAX arrays or NumPy
    arrays, other arguments as they are).  ``scaling``: the power of the size the time is
    expected to grow with, drawn as a guide in the scaling plot (None: no guide)."""

    def __init__(self, name, title, source, wrt, make_inputs, sizes, quick_sizes=None,
                 representative=None, size_name="size", size_label=None, notes="",
                 gradient=None, forward=None, peers=None, scaling=None):
        self.name = name
        self.title = title
        self.source = source
        self.arg_names = tuple(inspect.signature(source).parameters)
        self.wrt = self._wrt_names(wrt)
        self._make_inputs = make_inputs
        self.sizes = list(sizes)
        self.quick_sizes = list(quick_sizes) if quick_sizes is not None else self.sizes[:1]
        self.representative = representative if representative is not None else self.sizes[0]
        self.size_name = size_name
        self._size_label = size_label
        self.notes = notes
        self.gradient = gradient
        self.forward = forward
        self.peers = dict(peers or {})
        self.scaling = scaling
        missing = [w for w in self.wrt if w not in self.arg_names]
        if missing:
            raise ValueError(f"{name}: wrt names {missing} are not parameters of {source.__name__}")
        unknown = set(self.peers) - {"pytorch", "jax", "autograd"}
        if unknown:
            raise ValueError(f"{name}: peers {sorted(unknown)} are not pytorch, jax or autograd")

    def _wrt_names(self, wrt):
        """``wrt`` as parameter names: a name, a position (as ``srcdiff.grad`` takes), or a
        tuple of them."""
        items = (wrt,) if isinstance(wrt, (str, int)) else wrt
        try:
            items = tuple(items)
        except TypeError:
            raise TypeError(f"{self.name}: wrt must be a parameter name, a position, or a tuple "
                            f"of them; got {wrt!r}") from None
        names = []
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool):
                if not -len(self.arg_names) <= item < len(self.arg_names):
                    raise ValueError(f"{self.name}: wrt position {item} is out of range for "
                                     f"{self.source.__name__}{self.arg_names}")
                item = self.arg_names[item]
            elif not isinstance(item, str):
                raise TypeError(f"{self.name}: wrt must be a parameter name, a position, or a "
                                f"tuple of them; got {item!r}")
            names.append(item)
        return tuple(names)

    def make_inputs(self, size, rng):
        """The inputs for one size: a dict from each parameter of the source to its value,
        in the source's order."""
        inputs = self._make_inputs(size, rng)
        if not isinstance(inputs, dict):
            raise TypeError(f"{self.name}: make_inputs must return a dict from parameter name to "
                            f"value, got {type(inputs).__name__}")
        if set(inputs) != set(self.arg_names):
            missing = [n for n in self.arg_names if n not in inputs]
            extra = [n for n in inputs if n not in self.arg_names]
            raise ValueError(f"{self.name}: make_inputs keys must be the parameters of "
                             f"{self.source.__name__}{self.arg_names}"
                             + (f"; missing {missing}" if missing else "")
                             + (f"; not parameters: {extra}" if extra else ""))
        return {n: inputs[n] for n in self.arg_names}

    def args(self, inputs):
        """The positional arguments of ``source`` for these inputs."""
        return tuple(inputs[n] for n in self.arg_names)

    def wrt_index(self):
        """Positions of the ``wrt`` arguments in the source's parameter list."""
        return tuple(self.arg_names.index(n) for n in self.wrt)

    def size_label(self, size):
        if self._size_label is not None:
            return self._size_label(size)
        return str(size)

    def sizes_for(self, quick):
        return self.quick_sizes if quick else self.sizes

    def representative_for(self, quick):
        sizes = self.sizes_for(quick)
        return self.representative if self.representative in sizes else sizes[-1]

    def __repr__(self):
        return f"Workload({self.name!r})"


# ---------------------------------------------------------------------------
# 1. neuron: the classic single sigmoid neuron (CS231n's example).
# ---------------------------------------------------------------------------

def neuron(w, x):
    z = w[0] * x[0] + w[1] * x[1] + w[2]
    return 1.0 / (1.0 + np.exp(-z))


def _neuron_inputs(size, rng):
    return {"w": np.array([2.0, -3.0, -3.0]), "x": np.array([-1.0, -2.0])}


# ---------------------------------------------------------------------------
# 2. mlp: 784-128-10 ReLU network, softmax cross-entropy, batch of `size`.
# ---------------------------------------------------------------------------

def mlp_loss(W1, b1, W2, b2, X, Y):
    h = np.maximum(X @ W1 + b1, 0.0)
    z = h @ W2 + b2
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * logp) / X.shape[0]


def _mlp_inputs(batch, rng):
    n_in, n_hid, n_out = 784, 128, 10
    X = rng.standard_normal((batch, n_in))
    labels = rng.integers(0, n_out, size=batch)
    Y = np.zeros((batch, n_out))
    Y[np.arange(batch), labels] = 1.0
    return {
        "W1": rng.standard_normal((n_in, n_hid)) / math.sqrt(n_in),
        "b1": 0.1 * rng.standard_normal(n_hid),
        "W2": rng.standard_normal((n_hid, n_out)) / math.sqrt(n_hid),
        "b2": 0.1 * rng.standard_normal(n_out),
        "X": X,
        "Y": Y,
    }


# ---------------------------------------------------------------------------
# 3. lennard_jones: pair energy of N particles, reduced units (sigma = eps = 1).
# ---------------------------------------------------------------------------

def lj_energy(pos):
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


def _lj_inputs(n, rng):
    # First n points of a cubic lattice with spacing 1.2, each jittered by at
    # most 0.1 per coordinate: every pair is at least 1.2 - 2*0.1*sqrt(3) > 0.85
    # apart, so no r^-12 term blows up.
    m = int(math.ceil(n ** (1.0 / 3.0) - 1e-9))
    grid = np.stack(np.meshgrid(np.arange(m), np.arange(m), np.arange(m), indexing="ij"), axis=-1)
    grid = grid.reshape(-1, 3)[:n].astype(np.float64) * 1.2
    pos = grid + rng.uniform(-0.1, 0.1, size=grid.shape)
    return {"pos": np.ascontiguousarray(pos)}


# ---------------------------------------------------------------------------
# 4. pendulum: semi-implicit Euler rollout of 16 damped pendula, `steps` steps.
# ---------------------------------------------------------------------------

def final_energy(theta0, k, steps):
    n = theta0.shape[0]
    th = theta0.copy()
    om = np.zeros(n)
    for t in range(steps):
        for i in range(n):
            om[i] = om[i] + 0.01 * (-np.sin(th[i]) * (1.0 + k[i]) - 0.1 * om[i])
            th[i] = th[i] + 0.01 * om[i]
    return np.sum(0.5 * om * om + (1.0 - np.cos(th)))


def _pendulum_inputs(steps, rng):
    n = 16
    return {
        "theta0": rng.uniform(-1.0, 1.0, size=n),
        "k": rng.uniform(0.0, 0.5, size=n),
        "steps": int(steps),
    }


# ---------------------------------------------------------------------------
# 5. gmm: log-likelihood of n = 1000 points under a diagonal Gaussian mixture.
#    Differentiated: mixture logits alpha (K,) and means mu (K, d).
#    Constant: the per-component log standard deviations logsig (K, d).
# ---------------------------------------------------------------------------

def gmm_loglik(alpha, mu, X, logsig):
    n = X.shape[0]
    d = X.shape[1]
    K = alpha.shape[0]
    amax = np.max(alpha)
    log_norm = amax + np.log(np.sum(np.exp(alpha - amax)))
    inv_s = np.exp(-logsig)
    const = -np.sum(logsig, axis=1) - 0.5 * d * np.log(2.0 * np.pi)
    lp = np.zeros(K)
    total = 0.0
    for i in range(n):
        for k in range(K):
            q = 0.0
            for j in range(d):
                z = (X[i, j] - mu[k, j]) * inv_s[k, j]
                q += z * z
            lp[k] = alpha[k] - log_norm + const[k] - 0.5 * q
        m = np.max(lp)
        s = 0.0
        for k in range(K):
            s += np.exp(lp[k] - m)
        total += m + np.log(s)
    return total


def _gmm_inputs(size, rng):
    d, K = size
    n = 1000
    centers = 2.0 * rng.standard_normal((K, d))
    comp = rng.integers(0, K, size=n)
    X = centers[comp] + rng.standard_normal((n, d))
    return {
        "alpha": 0.5 * rng.standard_normal(K),
        "mu": centers + 0.3 * rng.standard_normal((K, d)),
        "X": np.ascontiguousarray(X),
        "logsig": 0.2 * rng.standard_normal((K, d)),
    }


# ---------------------------------------------------------------------------
# 6. rnn: tanh RNN, 32 hidden units, 8 inputs, `size` time steps,
#    loss 0.5 * ||h_T - target||^2.
# ---------------------------------------------------------------------------

def rnn_loss(Wx, Wh, b, xs, target):
    T = xs.shape[0]
    h = np.zeros(Wh.shape[0])
    for t in range(T):
        h = np.tanh(xs[t] @ Wx + h @ Wh + b)
    d = h - target
    return 0.5 * np.sum(d * d)


def _rnn_inputs(steps, rng):
    n_in, n_hid = 8, 32
    return {
        "Wx": rng.standard_normal((n_in, n_hid)) / math.sqrt(n_in),
        "Wh": 0.9 * rng.standard_normal((n_hid, n_hid)) / math.sqrt(n_hid),
        "b": 0.1 * rng.standard_normal(n_hid),
        "xs": rng.standard_normal((int(steps), n_in)),
        "target": rng.uniform(-0.5, 0.5, size=n_hid),
    }


# ---------------------------------------------------------------------------

WORKLOADS = [
    Workload("neuron", "sigmoid neuron (3 weights)", neuron, ("w",), _neuron_inputs,
             sizes=[1], quick_sizes=[1], representative=1, size_name="-",
             size_label=lambda s: "scalar"),
    Workload("mlp", "784-128-10 ReLU MLP, softmax cross-entropy", mlp_loss,
             ("W1", "b1", "W2", "b2"), _mlp_inputs,
             sizes=[64], quick_sizes=[64], representative=64, size_name="batch",
             size_label=lambda s: f"B={s}"),
    Workload("lennard_jones", "Lennard-Jones energy, O(N^2) pair loop", lj_energy, ("pos",),
             _lj_inputs, sizes=[64, 128, 256, 512, 1024], quick_sizes=[32, 64],
             representative=256, size_name="particles N", size_label=lambda s: f"N={s}",
             scaling=2),
    Workload("pendulum", "16 damped pendula, semi-implicit Euler rollout", final_energy,
             ("theta0", "k"), _pendulum_inputs,
             sizes=[100, 300, 1000, 3000, 10000], quick_sizes=[100, 300],
             representative=1000, size_name="time steps", size_label=lambda s: f"steps={s}",
             scaling=1),
    Workload("gmm", "diagonal GMM log-likelihood, n=1000 points", gmm_loglik, ("alpha", "mu"),
             _gmm_inputs,
             sizes=[(d, K) for d in (2, 8, 32) for K in (5, 20, 50)], quick_sizes=[(2, 5)],
             representative=(8, 20), size_name="(d, K)",
             size_label=lambda s: f"d={s[0]},K={s[1]}",
             notes="logsig (log standard deviations) is a constant input, not differentiated"),
    Workload("rnn", "tanh RNN, 8 inputs, 32 hidden, loss on final state", rnn_loss,
             ("Wx", "Wh", "b"), _rnn_inputs,
             sizes=[100, 1000], quick_sizes=[100], representative=100, size_name="time steps T",
             size_label=lambda s: f"T={s}"),
]

BY_NAME = {w.name: w for w in WORKLOADS}
FILES = []      # the files user workloads were loaded from, in order (new processes load them too)


def get(name):
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown workload {name!r}; known: {', '.join(BY_NAME)}") from None


def every():
    """The built-in workloads, then those loaded from files."""
    return list(BY_NAME.values())


def load_file(path):
    """Register the workloads a Python file lists in ``WORKLOADS``; returns them."""
    path = os.path.abspath(path)
    if path in FILES:
        return [w for w in BY_NAME.values() if getattr(w, "file", None) == path]
    stem = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"benchmark_workloads_{stem}", path)
    if spec is None:
        raise ValueError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module        # so that its functions' globals and source resolve
    spec.loader.exec_module(module)
    found = getattr(module, "WORKLOADS", None)
    if not isinstance(found, (list, tuple)) or not all(isinstance(w, Workload) for w in found):
        raise ValueError(f"{path}: define WORKLOADS = [Workload(...), ...] "
                         "(from benchmarks.workloads import Workload)")
    for w in found:
        if w.name in BY_NAME:
            raise ValueError(f"{path}: workload name {w.name!r} is taken")
    for w in found:
        w.file = path
        BY_NAME[w.name] = w
    FILES.append(path)
    return list(found)
