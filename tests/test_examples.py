"""Run every example as a user would (a subprocess from the repository root) and check its output."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_example(name, *options, timeout=240):
    """Run examples/<name> and return its stdout; fail with the output if it exits non-zero."""
    result = subprocess.run([sys.executable, str(Path("examples") / name), *options],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{name} exited with {result.returncode}\n--- stdout ---\n{result.stdout}"
        f"\n--- stderr ---\n{result.stderr}")
    return result.stdout


def number_after(label, text):
    match = re.search(re.escape(label) + r"\s*(-?[0-9.]+(?:e[-+]?[0-9]+)?)", text)
    assert match, f"no {label!r} line in the output:\n{text}"
    return float(match.group(1))


def test_neuron():
    out = run_example("neuron.py")
    assert "f(w, x) = 0.73" in out
    assert "dw = [-0.20, -0.39, 0.20]" in out
    assert "dx = [0.39, -0.59]" in out
    assert "def value_and_gradient(w, x):" in out  # the generated backward is printed


def test_mlp_spiral():
    out = run_example("mlp_spiral.py", "--steps", "1000", "--quiet")
    assert len(re.findall(r"^step +\d+ +loss", out, re.M)) >= 5  # progress is reported
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", out)]
    assert losses[-1] < losses[0] / 3
    assert number_after("final training accuracy:", out) > 95.0
    assert "def value_and_gradient" not in out  # --quiet


def test_mlp_spiral_default_run_prints_backward():
    out = run_example("mlp_spiral.py")
    assert number_after("final training accuracy:", out) > 95.0
    assert "def value_and_gradient(W1, b1, W2, b2, X, Y):" in out
    assert "# backward" in out


def test_forces():
    out = run_example("forces.py", "--steps", "200")
    assert number_after("max abs difference, srcdiff vs hand-written forces:", out) < 1e-8
    assert "def value_and_gradient(pos):" in out
    energies = [float(v) for v in re.findall(r"^step +\d+ +energy +(-?\d+\.\d+)", out, re.M)]
    assert len(energies) >= 5
    assert all(b < a for a, b in zip(energies, energies[1:]))
    assert "decreased at every step: True" in out


def test_pendulum():
    out = run_example("pendulum.py", "--quiet")
    assert number_after("max abs error", out) < 1e-6
    match = re.search(r"final energy (\d+\.\d+) vs target (\d+\.\d+)", out)
    assert match, out
    energy, target = map(float, match.groups())
    assert energy == pytest.approx(target, rel=1e-3)
    first = number_after("iteration   0  final energy", out)
    assert abs(first - target) > 100 * abs(energy - target)  # the fit actually moved it
