"""Fit the stiffness of 16 damped pendulums through a 1000-step simulation.

`final_energy` integrates 16 independent damped pendulums with explicit
loops (semi-implicit Euler, dt = 0.01, 1000 steps) and returns their total
energy at the end.  Each pendulum i has its own stiffness factor k[i].

We fit k by gradient descent so that the final energy hits a target (half of
the energy at t = 0).  The objective calls `final_energy`; srcdiff inlines
that call and differentiates through all 16,000 loop iterations, recording
what the backward pass needs on a tape.  The gradient is checked against
finite differences once, before the fit.

    python examples/pendulum.py [--iterations N] [--quiet]
"""
import argparse
import time

import numpy as np

import srcdiff


def final_energy(theta0, k, steps):
    n = theta0.shape[0]
    th = theta0.copy()
    om = np.zeros(n)
    for t in range(steps):
        for i in range(n):
            om[i] = om[i] + 0.01 * (-np.sin(th[i]) * (1.0 + k[i]) - 0.1 * om[i])
            th[i] = th[i] + 0.01 * om[i]
    return np.sum(0.5 * om * om + (1.0 - np.cos(th)))


def objective(theta0, k, steps, target):
    e = final_energy(theta0, k, steps)
    return (e - target) ** 2


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100, help="most gradient steps (default 100)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    parser.add_argument("--quiet", action="store_true", help="do not print the generated code")
    args = parser.parse_args()

    n, steps = 16, 1000
    rng = np.random.default_rng(0)
    theta0 = rng.uniform(1.0, 2.0, n)  # initial angles (rad); the pendulums start at rest
    k = np.zeros(n)

    initial_energy = np.sum(1.0 - np.cos(theta0))
    target = 0.5 * initial_energy
    tolerance = 1e-4 * target
    print(f"{n} pendulums, {steps} steps of dt = 0.01")
    print(f"energy at t = 0: {initial_energy:.6f}; target final energy: {target:.6f}")

    objective_and_grad = srcdiff.value_and_grad(objective, wrt="k")

    start = time.perf_counter()
    objective_and_grad(theta0, k, steps, target)
    print(f"generated and compiled the gradient in {time.perf_counter() - start:.1f} s")
    error = srcdiff.check_grad(objective, theta0, k, steps, target, wrt="k")
    print(f"gradient check against finite differences: max abs error {error:.2e}")

    start = time.perf_counter()
    for iteration in range(args.iterations + 1):
        value, dk = objective_and_grad(theta0, k, steps, target)
        energy = final_energy(theta0, k, steps)
        print(f"iteration {iteration:3d}  final energy {energy:.6f}  "
              f"|energy - target| {abs(energy - target):.2e}")
        if abs(energy - target) < tolerance or iteration == args.iterations:
            break
        k = k - args.lr * dk
    elapsed = time.perf_counter() - start

    print(f"{iteration} iterations in {elapsed:.2f} s")
    print(f"fitted k = {np.array2string(k, precision=3, max_line_width=88)}")
    print(f"final energy {energy:.6f} vs target {target:.6f}")
    if not args.quiet:
        print()
        print("Generated forward and backward:")
        print(objective_and_grad.source)
    assert abs(energy - target) < tolerance, "the fit did not reach its target"


if __name__ == "__main__":
    main()
