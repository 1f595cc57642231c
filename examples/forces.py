"""Lennard-Jones forces as the gradient of the energy.

The energy of N particles interacting through the Lennard-Jones potential
(sigma = epsilon = 1) is a double loop over pairs.  The forces are minus its
gradient with respect to the positions: srcdiff generates that gradient from
the loop itself, so no force code has to be written by hand.

The example checks srcdiff's forces against a hand-written force loop on 64
particles on a jittered cubic lattice, prints the generated backward, and then
relaxes the configuration by steepest descent, printing the energy as it
decreases.

    python examples/forces.py [--steps N] [--quiet]
"""
import argparse
import time

import numpy as np

import srcdiff


def energy(pos):
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


def forces_by_hand(pos):
    """F_i = sum_j 24 (2 s12 - s6) / r2 * (r_i - r_j), with s6 = 1/r2^3 and s12 = s6^2."""
    n = pos.shape[0]
    forces = np.zeros_like(pos)
    for i in range(n):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            r2 = d @ d
            s6 = 1.0 / r2**3
            s12 = s6 * s6
            f = 24.0 * (2.0 * s12 - s6) / r2 * d
            forces[i] += f
            forces[j] -= f
    return forces


def jittered_lattice(per_side=4, spacing=1.2, jitter=0.05, seed=0):
    """per_side**3 particles on a cubic lattice, each displaced by uniform noise in [-jitter, jitter]."""
    rng = np.random.default_rng(seed)
    grid = np.arange(per_side) * spacing
    pos = np.array([[x, y, z] for x in grid for y in grid for z in grid])
    return pos + rng.uniform(-jitter, jitter, size=pos.shape)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steepest-descent steps (default 1000)")
    parser.add_argument("--quiet", action="store_true", help="do not print the generated code")
    args = parser.parse_args()

    pos = jittered_lattice()
    print(f"{pos.shape[0]} particles, lattice spacing 1.2")

    energy_and_grad = srcdiff.value_and_grad(energy, wrt="pos")

    start = time.perf_counter()
    e, grad = energy_and_grad(pos)
    print(f"generated and compiled the gradient in {time.perf_counter() - start:.1f} s")
    forces = -grad

    reference = forces_by_hand(pos)
    difference = np.max(np.abs(forces - reference))
    print(f"energy: {e:.6f}")
    print(f"max |F| = {np.max(np.abs(reference)):.4f}")
    print(f"max abs difference, srcdiff vs hand-written forces: {difference:.3e}")
    assert difference < 1e-8

    if not args.quiet:
        print()
        print("Generated forward and backward:")
        print(energy_and_grad.source)

    # Relax by steepest descent: move every particle along its force.
    print()
    print("steepest-descent relaxation:")
    step_size = 2e-3
    report_every = max(args.steps // 10, 1)
    energies = []
    start = time.perf_counter()
    for step in range(args.steps + 1):
        e, grad = energy_and_grad(pos)
        energies.append(e)
        if step % report_every == 0 or step == args.steps:
            print(f"step {step:5d}  energy {e:12.6f}  max |F| {np.max(np.abs(grad)):.4f}")
        pos = pos - step_size * grad
    elapsed = time.perf_counter() - start
    print(f"{args.steps} steps in {elapsed:.2f} s")
    decreasing = bool(np.all(np.diff(energies) <= 0.0))
    print(f"energy {energies[0]:.6f} -> {energies[-1]:.6f}, decreased at every step: {decreasing}")

if __name__ == "__main__":
    main()
