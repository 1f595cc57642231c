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
