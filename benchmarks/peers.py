"""Peer AD systems, each with its own idiomatic code for the same math.

* PyTorch (CPU, eager, float64, one thread): vectorized tensor code;
  ``torch.autograd.grad``.
* HIPS autograd: the same vectorized code on ``autograd.numpy``;
  ``autograd.grad(f, argnum=(...))``.
* JAX (x64 enabled, CPU): ``jax.jit(jax.grad(f, argnums=(...)))``, with
  ``lax.fori_loop`` for the pendulum and RNN rollouts.

Idioms shared by all three, on purpose (they are how these libraries are
meant to be used, not how srcdiff's loop sources are written):

* lennard_jones: all N x N pair vectors by broadcasting, an upper-triangle
  mask (i < j), masked-out entries replaced before the division.
* pendulum: a loop over time steps, vectorized over the 16 pendula.
* gmm: an (n, K, d) broadcast for the Mahalanobis terms, ``log_softmax`` and
  ``logsumexp`` from the library.
* rnn: the input projection ``xs @ Wx + b`` for all steps as one matrix
  product, then the recurrence over time.

Every loader (:func:`torch_peer`, :func:`autograd_peer`, :func:`jax_peer`)
returns ``(peer, "")`` or ``(None, note)`` when the package cannot be
imported; the libraries are imported only inside the loaders.  A peer's
``grad(workload, inputs)`` and ``forward(workload, inputs)`` return
zero-argument callables; the gradient callable returns NumPy float64 arrays
in the order of ``workload.wrt``, the forward callable a scalar (a float, or
for JAX a ready 0-d array: ``float()`` of it is left out of the timing).
"""

import importlib
import math

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


def _split_inputs(workload, inputs):
    """Names of the array (or differentiated number) arguments, and the other (static, e.g.
    int) arguments."""
    static = {n: v for n, v in inputs.items()
              if not isinstance(v, np.ndarray) and n not in workload.wrt}
    array_names = [n for n in workload.arg_names if n not in static]
    return array_names, static


def _import(name):
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # ImportError, or a broken install
        return None, f"{name} not importable ({type(exc).__name__}: {exc})"


class Peer:
    name = "peer"
    version = ""

    def functions(self):
        """Map workload name -> builder(inputs) -> f(*args) returning a scalar."""
        raise NotImplementedError

    def supports(self, workload):
        return self.name in workload.peers or workload.name in self.functions()

    def function(self, workload, inputs):
        """The workload's own code for this library if it brings one, else the built-in one."""
        own = workload.peers.get(self.name)
        return own if own is not None else self.functions()[workload.name](inputs)


# ===========================================================================
# PyTorch
# ===========================================================================

class TorchPeer(Peer):
    name = "pytorch"

    def __init__(self, torch):
        self.torch = torch
        self.version = torch.__version__
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already set, or parallel work has started

    def _args(self, workload, inputs, requires_grad):
        torch = self.torch
        args, params = [], []
        for n in workload.arg_names:
            v = inputs[n]
            if isinstance(v, np.ndarray) or n in workload.wrt:     # a number in wrt: 0-d tensor
                v = torch.from_numpy(v if isinstance(v, np.ndarray) else np.asarray(v, float))
                if requires_grad and n in workload.wrt:
                    v = v.detach().requires_grad_(True)
                    params.append(v)
            args.append(v)
        return args, params

    def grad(self, workload, inputs):
        f = self.function(workload, inputs)
        args, params = self._args(workload, inputs, requires_grad=True)
        autograd_grad = self.torch.autograd.grad

        def grad_fn():
            loss = f(*args)
            return tuple(g.numpy() for g in autograd_grad(loss, params))

        return grad_fn

    def forward(self, workload, inputs):
        f = self.function(workload, inputs)
        args, _ = self._args(workload, inputs, requires_grad=False)
        no_grad = self.torch.no_grad

        def forward_fn():
            with no_grad():
                return f(*args).item()

        return forward_fn

    def functions(self):
        torch = self.torch

        def neuron(inputs):
            def f(w, x):
                z = w[0] * x[0] + w[1] * x[1] + w[2]
                return 1.0 / (1.0 + torch.exp(-z))
            return f

        def mlp(inputs):
            def f(W1, b1, W2, b2, X, Y):
                h = torch.relu(X @ W1 + b1)
                z = h @ W2 + b2
                z = z - z.max(dim=1, keepdim=True).values
                logp = z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))
                return -(Y * logp).sum() / X.shape[0]
            return f

        def lennard_jones(inputs):
            n = inputs["pos"].shape[0]
            off = ~torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)  # not (i < j)

            def f(pos):
                d = pos[:, None, :] - pos[None, :, :]
                r2 = (d * d).sum(dim=-1).masked_fill(off, 1.0)
                s6 = 1.0 / (r2 * r2 * r2)
                return (4.0 * (s6 * s6 - s6)).masked_fill(off, 0.0).sum()
            return f

        def pendulum(inputs):
            def f(theta0, k, steps):
                th = theta0
                om = torch.zeros_like(theta0)
                for _ in range(steps):
                    om = om + 0.01 * (-torch.sin(th) * (1.0 + k) - 0.1 * om)
                    th = th + 0.01 * om
                return (0.5 * om * om + (1.0 - torch.cos(th))).sum()
            return f

        def gmm(inputs):
            def f(alpha, mu, X, logsig):
                d = X.shape[1]
                const = -logsig.sum(dim=1) - 0.5 * d * LOG_2PI
                z = (X[:, None, :] - mu[None, :, :]) * torch.exp(-logsig)[None, :, :]
                lp = torch.log_softmax(alpha, dim=0) + const - 0.5 * (z * z).sum(dim=-1)
                return torch.logsumexp(lp, dim=1).sum()
            return f

        def rnn(inputs):
            def f(Wx, Wh, b, xs, target):
                xw = xs @ Wx + b
                h = torch.zeros(Wh.shape[0], dtype=Wh.dtype)
                for t in range(xs.shape[0]):
                    h = torch.tanh(xw[t] + h @ Wh)
                d = h - target
                return 0.5 * (d * d).sum()
            return f

        return {"neuron": neuron, "mlp": mlp, "lennard_jones": lennard_jones,
                "pendulum": pendulum, "gmm": gmm, "rnn": rnn}


def torch_peer():
    torch, note = _import("torch")
    if torch is None:
        return None, note + "; install with: pip install torch"
    return TorchPeer(torch), ""


# ===========================================================================
# HIPS autograd
# ===========================================================================

class AutogradPeer(Peer):
    name = "autograd"

    def __init__(self, autograd, anp, logsumexp, version):
        self.autograd = autograd
        self.anp = anp
        self.logsumexp = logsumexp
        self.version = version

    def grad(self, workload, inputs):
        f = self.function(workload, inputs)
        args = workload.args(inputs)
        g = self.autograd.grad(f, argnum=workload.wrt_index())

        def grad_fn():
            return tuple(np.asarray(x, dtype=np.float64) for x in g(*args))

        return grad_fn

    def forward(self, workload, inputs):
        f = self.function(workload, inputs)
        args = workload.args(inputs)
        return lambda: float(f(*args))

    def functions(self):
        anp = self.anp
        logsumexp = self.logsumexp

        def neuron(inputs):
            def f(w, x):
                z = w[0] * x[0] + w[1] * x[1] + w[2]
                return 1.0 / (1.0 + anp.exp(-z))
            return f

        def mlp(inputs):
            def f(W1, b1, W2, b2, X, Y):
                h = anp.maximum(anp.dot(X, W1) + b1, 0.0)
                z = anp.dot(h, W2) + b2
                z = z - anp.max(z, axis=1, keepdims=True)
                logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
                return -anp.sum(Y * logp) / X.shape[0]
            return f

        def lennard_jones(inputs):
            n = inputs["pos"].shape[0]
            upper = np.triu(np.ones((n, n), dtype=bool), k=1)  # i < j

            def f(pos):
                d = pos[:, None, :] - pos[None, :, :]
                r2 = anp.where(upper, anp.sum(d * d, axis=-1), 1.0)
                s6 = 1.0 / (r2 * r2 * r2)
                return anp.sum(anp.where(upper, 4.0 * (s6 * s6 - s6), 0.0))
            return f

        def pendulum(inputs):
            def f(theta0, k, steps):
                th = theta0
                om = anp.zeros(theta0.shape[0])
                for _ in range(steps):
                    om = om + 0.01 * (-anp.sin(th) * (1.0 + k) - 0.1 * om)
                    th = th + 0.01 * om
                return anp.sum(0.5 * om * om + (1.0 - anp.cos(th)))
            return f

        def gmm(inputs):
            def f(alpha, mu, X, logsig):
                d = X.shape[1]
                const = -anp.sum(logsig, axis=1) - 0.5 * d * LOG_2PI
                z = (X[:, None, :] - mu[None, :, :]) * anp.exp(-logsig)[None, :, :]
                lp = (alpha - logsumexp(alpha)) + const - 0.5 * anp.sum(z * z, axis=-1)
                return anp.sum(logsumexp(lp, axis=1))
            return f

        def rnn(inputs):
            def f(Wx, Wh, b, xs, target):
                xw = anp.dot(xs, Wx) + b
                h = anp.zeros(Wh.shape[0])
                for t in range(xs.shape[0]):
                    h = anp.tanh(xw[t] + anp.dot(h, Wh))
                d = h - target
                return 0.5 * anp.sum(d * d)
            return f

        return {"neuron": neuron, "mlp": mlp, "lennard_jones": lennard_jones,
                "pendulum": pendulum, "gmm": gmm, "rnn": rnn}


def autograd_peer():
    autograd, note = _import("autograd")
    if autograd is None:
        return None, note + "; install with: pip install autograd"
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp
    try:
        from importlib.metadata import version
        ver = version("autograd")
    except Exception:
        ver = "?"
    return AutogradPeer(autograd, anp, logsumexp, ver), ""


# ===========================================================================
# JAX
# ===========================================================================

class JaxPeer(Peer):
    name = "jax"

    def __init__(self, jax):
        self.jax = jax
        self.jnp = jax.numpy
        self.lax = jax.lax
        self.version = jax.__version__

    def _bind(self, workload, inputs):
        """f over the array arguments only (ints become compile-time constants)."""
        f = self.function(workload, inputs)
        array_names, static = _split_inputs(workload, inputs)
        jnp = self.jnp

        def bound(*arrays):
            return f(**dict(zip(array_names, arrays)), **static)

        arrays = [self.jax.device_put(jnp.asarray(inputs[n])) for n in array_names]
        return bound, arrays, array_names

    def grad(self, workload, inputs):
        bound, arrays, array_names = self._bind(workload, inputs)
        argnums = tuple(array_names.index(w) for w in workload.wrt)
        g = self.jax.jit(self.jax.grad(bound, argnums=argnums))

        def grad_fn():
            return tuple(np.asarray(x) for x in g(*arrays))

        return grad_fn

    def forward(self, workload, inputs):
        bound, arrays, _ = self._bind(workload, inputs)
        f = self.jax.jit(bound)
        # A 0-d device array, not float(): float() on a JAX scalar costs ~25 µs,
        # more than the whole neuron forward.  The caller converts when checking.
        return lambda: f(*arrays).block_until_ready()

    def functions(self):
        jax, jnp, lax = self.jax, self.jnp, self.lax

        def neuron(inputs):
            def f(w, x):
                z = w[0] * x[0] + w[1] * x[1] + w[2]
                return 1.0 / (1.0 + jnp.exp(-z))
            return f

        def mlp(inputs):
            def f(W1, b1, W2, b2, X, Y):
                h = jnp.maximum(X @ W1 + b1, 0.0)
                z = h @ W2 + b2
                z = z - jnp.max(z, axis=1, keepdims=True)
                logp = z - jnp.log(jnp.sum(jnp.exp(z), axis=1, keepdims=True))
                return -jnp.sum(Y * logp) / X.shape[0]
            return f

        def lennard_jones(inputs):
            def f(pos):
                n = pos.shape[0]
                upper = jnp.triu(jnp.ones((n, n), dtype=bool), k=1)
                d = pos[:, None, :] - pos[None, :, :]
                r2 = jnp.where(upper, jnp.sum(d * d, axis=-1), 1.0)
                s6 = 1.0 / (r2 * r2 * r2)
                return jnp.sum(jnp.where(upper, 4.0 * (s6 * s6 - s6), 0.0))
            return f

        def pendulum(inputs):
            def f(theta0, k, steps):
                def step(_, carry):
                    th, om = carry
                    om = om + 0.01 * (-jnp.sin(th) * (1.0 + k) - 0.1 * om)
                    th = th + 0.01 * om
                    return th, om
                th, om = lax.fori_loop(0, steps, step, (theta0, jnp.zeros_like(theta0)))
                return jnp.sum(0.5 * om * om + (1.0 - jnp.cos(th)))
            return f

        def gmm(inputs):
            def f(alpha, mu, X, logsig):
                d = X.shape[1]
                const = -jnp.sum(logsig, axis=1) - 0.5 * d * LOG_2PI
                z = (X[:, None, :] - mu[None, :, :]) * jnp.exp(-logsig)[None, :, :]
                lp = jax.nn.log_softmax(alpha) + const - 0.5 * jnp.sum(z * z, axis=-1)
                return jnp.sum(jax.nn.logsumexp(lp, axis=1))
            return f

        def rnn(inputs):
            def f(Wx, Wh, b, xs, target):
                xw = xs @ Wx + b
                h = lax.fori_loop(0, xs.shape[0], lambda t, h: jnp.tanh(xw[t] + h @ Wh),
                                  jnp.zeros(Wh.shape[0], dtype=Wh.dtype))
                d = h - target
                return 0.5 * jnp.sum(d * d)
            return f

        return {"neuron": neuron, "mlp": mlp, "lennard_jones": lennard_jones,
                "pendulum": pendulum, "gmm": gmm, "rnn": rnn}


def jax_peer():
    jax, note = _import("jax")
    if jax is None:
        return None, note + "; install with: pip install jax"
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    return JaxPeer(jax), ""
