"""`python -m benchmarks --quick` runs as a user runs it, so the benchmark suite never rots:
every workload, every installed system, checked gradients, a table, JSON, Markdown and
(with matplotlib) plots. Peers that are not installed are skipped with a note."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"neuron", "mlp", "lennard_jones", "pendulum", "gmm", "rnn"}


@pytest.mark.slow
def test_quick_benchmark_runs_every_workload_and_writes_its_results(tmp_path):
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--strict",
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=900, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "srcdiff" in run.stdout and "handwritten" in run.stdout

    result = json.loads((tmp_path / "results-quick.json").read_text())
    records = result["records"]
    assert {r["workload"] for r in records} == WORKLOADS
    for name in WORKLOADS:
        srcdiff_rows = [r for r in records if r["workload"] == name and r["system"] == "srcdiff"]
        assert srcdiff_rows and all(r["status"] == "ok" for r in srcdiff_rows), name
        assert all(r["grad"] and r["grad"]["median_s"] > 0 for r in srcdiff_rows), name
    for name in result["skipped_systems"]:
        assert name in ("pytorch", "autograd", "jax"), name
    assert result["startup"] and result["startup"][0]["total_s"] > 0
    markdown = (tmp_path / "results-quick.md").read_text()
    assert "| mlp |" in markdown and "Start-up in a new process" in markdown
    if importlib.util.find_spec("matplotlib"):
        assert len(list(tmp_path.glob("results-quick-*.png"))) == 3


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_importing_the_benchmarks_binds_the_process_to_one_core():
    probe = "import os, benchmarks; print(len(os.sched_getaffinity(0)), len(benchmarks.USABLE_CORES))"
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stderr
    bound, usable = map(int, run.stdout.split())
    assert bound == 1 and usable == len(os.sched_getaffinity(0))


def test_the_driver_runs_as_a_script_from_any_folder(tmp_path):
    """`python benchmarks/run.py` works as `python -m benchmarks` does, one thread per library."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
                          "--only", "neuron", "--systems", "srcdiff", "--no-startup",
                          "--no-plots", "--strict", "--out", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    records = json.loads((tmp_path / "results-quick-neuron.json").read_text())["records"]
    assert {r["system"] for r in records} == {"handwritten", "srcdiff"}
    assert all(r["status"] in ("ref", "ok") for r in records)


USER_WORKLOADS = '''
import numpy as np
from benchmarks.workloads import Workload


def chain(x, a):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s += a * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2
    return s


def chain_grad(x, a):
    g = np.zeros_like(x)
    for i in range(x.shape[0] - 1):
        r = x[i + 1] - x[i] * x[i]
        g[i] += -4.0 * a * r * x[i] - 2.0 * (1.0 - x[i])
        g[i + 1] += 2.0 * a * r
    return g


def chain_off_by_a_factor(x, a):
    return 1.5 * chain(x, a)


def twice_chain_grad(x, a):
    return 2.0 * chain_grad(x, a)


def chain_torch(x, a):
    return (a * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def inputs(n, rng):
    return {"a": 10.0, "x": rng.uniform(-1.0, 1.0, n)}        # any order


def broken_inputs(n, rng):
    return {"x": np.ones(n) * undefined_scale}


WORKLOADS = [
    Workload("chain_fd", "Rosenbrock chain, checked by finite differences", chain, "x", inputs,
             sizes=[50, 100], peers={"autograd": chain_off_by_a_factor}),
    Workload("chain_hand", "Rosenbrock chain, against a gradient by hand", chain, "x", inputs,
             sizes=[50], gradient=chain_grad, forward=chain),
    Workload("chain_wrong_hand", "a hand-written gradient off by a factor", chain, "x", inputs,
             sizes=[50], gradient=twice_chain_grad),
    Workload("chain_broken", "make_inputs raises", chain, "x", broken_inputs, sizes=[50]),
    Workload("chain_both", "x and the number a, by position", chain, (0, 1), inputs,
             sizes=[50], peers={"pytorch": chain_torch}),
]
'''


def test_a_users_own_workloads_are_checked_and_timed(tmp_path):
    """--workloads FILE: the file's workloads only; without a hand-written gradient every
    system is checked by finite differences of the source (a wrong one FAILS); with one,
    times are given as ratios to it."""
    (tmp_path / "mine.py").write_text(USER_WORKLOADS)
    systems = ",".join(["srcdiff"] + [peer for peer in ("autograd", "pytorch")
                                      if importlib.util.find_spec(peer.replace("pytorch", "torch"))])
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--workloads", str(tmp_path / "mine.py"),
                          "--quick", "--systems", systems, "--no-startup", "--no-plots",
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stem = "results-quick-chain_fd+chain_hand+chain_wrong_hand+chain_broken+chain_both"
    records = json.loads((tmp_path / (stem + ".json")).read_text())["records"]
    status = {(r["workload"], r["system"]): r for r in records}
    assert {r["workload"] for r in records} == {"chain_fd", "chain_hand", "chain_wrong_hand",
                                                "chain_broken", "chain_both"}
    assert status["chain_fd", "handwritten"]["status"] == "n/a"
    assert status["chain_fd", "srcdiff"]["status"] == "ok"
    assert status["chain_fd", "srcdiff"]["grad_error"] < 1e-5
    assert status["chain_fd", "srcdiff"]["ratio_to_handwritten"] is None
    assert status["chain_hand", "handwritten"]["status"] == "ref"
    assert status["chain_hand", "srcdiff"]["status"] == "ok"
    assert status["chain_hand", "srcdiff"]["ratio_to_handwritten"] > 0
    # a wrong hand-written gradient is FAILED, and the others are checked by finite differences
    assert status["chain_wrong_hand", "handwritten"]["status"] == "FAILED"
    assert "finite-difference check" in status["chain_wrong_hand", "handwritten"]["message"]
    assert status["chain_wrong_hand", "srcdiff"]["status"] == "ok"
    assert status["chain_wrong_hand", "srcdiff"]["grad_error"] < 1e-5
    # an error in make_inputs is that workload's ERROR; the run goes on
    assert all(status["chain_broken", s]["status"] == "ERROR" and "undefined_scale" in
               status["chain_broken", s]["message"] for s in ["handwritten", *systems.split(",")])
    # wrt by position, a number among them: one gradient each
    assert status["chain_both", "srcdiff"]["status"] == "ok"
    if "autograd" in systems:
        assert status["chain_fd", "autograd"]["status"] == "FAILED"
        assert status["chain_hand", "autograd"]["status"] == "n/a"
    if "pytorch" in systems:
        assert status["chain_both", "pytorch"]["status"] == "ok"
        assert status["chain_both", "pytorch"]["grad_error"] < 1e-5


def test_a_misspelled_system_is_an_error():
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--systems", "pytorh", "--quick"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "unknown system 'pytorh'" in run.stderr and "'pytorch'" in run.stderr
