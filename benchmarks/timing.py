"""Timing, memory and start-up measurement helpers.

* :func:`measure_many` / :func:`measure` -- median time of zero-argument
  callables after a warm-up, with an adaptive repeat count (about ``target``
  seconds per callable), interleaved between callables, on the wall clock
  and on the process CPU-time clock, with the inter-quartile spread and a
  "noisy" flag.
* :func:`peak_memory` -- peak bytes allocated during one call, as seen by
  ``tracemalloc``.  NumPy registers its data allocations with tracemalloc, and
  so do numba's runtime (NRT) array allocations, so NumPy, HIPS autograd and
  numba-compiled code are covered.  PyTorch's and XLA's own allocators are
  *not* traced: for those systems the number only counts Python objects and
  NumPy arrays and is a lower bound.
* :func:`startup` -- wall time of a fresh ``python -c`` process that imports
  the benchmark modules, builds the inputs and calls one system's gradient
  once (compiled-code caches warm), minus a bare ``python -c pass`` start.
"""

import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np

# Noisy if the inter-quartile range exceeds this fraction of the median.
NOISE_THRESHOLD = 0.2

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


CLOCKS = ("wall", "cpu")


class Measurement:
    """Per-call times of one callable, in seconds, on two clocks.

    ``wall`` is ``time.perf_counter``; ``cpu`` is ``time.process_time``, the
    CPU time of all threads of this process.  With every library pinned to one
    thread the two agree on an idle machine; on a machine shared with other
    work, ``cpu`` leaves out the time this process was not scheduled.
    ``clock`` selects which one ``median``/``p25``/``p75``/``spread`` refer to.
    """

    def __init__(self, wall, cpu, number, clock="wall"):
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}")
        self.wall = np.asarray(wall, dtype=float)
        self.cpu = np.asarray(cpu, dtype=float)
        self.number = number          # calls per sample
        self.clock = clock
        self.per_call = self.wall if clock == "wall" else self.cpu
        self.median = float(np.median(self.per_call))
        self.p25, self.p75 = (float(v) for v in np.percentile(self.per_call, [25, 75]))
        self.min = float(self.per_call.min())

    @property
    def samples(self):
        return len(self.per_call)

    @property
    def spread(self):
        """(p75 - p25) / median."""
        return (self.p75 - self.p25) / self.median if self.median > 0 else 0.0

    @property
    def noisy(self):
        return self.spread > NOISE_THRESHOLD

    def as_dict(self):
        return {
            "clock": self.clock,
            "median_s": self.median,
            "p25_s": self.p25,
            "p75_s": self.p75,
            "min_s": self.min,
            "spread": self.spread,
            "noisy": self.noisy,
            "wall_median_s": float(np.median(self.wall)),
            "cpu_median_s": float(np.median(self.cpu)),
            "samples": self.samples,
            "calls_per_sample": self.number,
        }


def measure_many(fns, target=0.2, min_samples=3, max_samples=200, rounds=10, warmup=1,
                 slow_call=1.0, clock="wall"):
    """Median per-call times of several zero-argument callables (``{key: fn}``).

    For each callable, after ``warmup`` untimed calls, one timed call
    estimates its cost.  Fast callables are batched ``number`` calls per
    sample so that a sample lasts at least ``target / 50`` (timer overhead
    negligible); the number of samples is chosen so that each callable gets
    about ``target`` seconds, clamped to ``[min_samples, max_samples]``
    (callables slower than ``slow_call`` seconds get at most 3 as minimum).

    The samples are taken in ``rounds`` round-robin passes over all the
    callables, so that on a machine shared with other work a burst of
    foreign load slows every system a little instead of one system a lot.
    The garbage collector is off while timing, as in :mod:`timeit`.
    Returns ``{key: Measurement}``.
    """
    wall_clock, cpu_clock = time.perf_counter, time.process_time
    plan = {}
    for key, fn in fns.items():
        for _ in range(warmup):
            fn()
        t0 = wall_clock()
        fn()
        est = max(wall_clock() - t0, 1e-9)
        number = max(1, int(target / 50.0 / est))
        lo = min(3, min_samples) if est > slow_call else min_samples
        n = min(max(int(target / (est * number)), lo), max_samples)
        plan[key] = (number, n)
    walls = {key: [] for key in fns}
    cpus = {key: [] for key in fns}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(rounds):
            for key, fn in fns.items():
                number, n = plan[key]
                todo = n * (r + 1) // rounds - n * r // rounds
                for _ in range(todo):
                    c0 = cpu_clock()
                    t0 = wall_clock()
                    for _ in range(number):
                        fn()
                    t1 = wall_clock()
                    c1 = cpu_clock()
                    walls[key].append((t1 - t0) / number)
                    cpus[key].append((c1 - c0) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {key: Measurement(walls[key], cpus[key], plan[key][0], clock) for key in fns}


def measure(fn, target=0.2, min_samples=3, max_samples=200, warmup=1, clock="wall"):
    """:func:`measure_many` for a single callable; returns its Measurement."""
    return measure_many({0: fn}, target=target, min_samples=min_samples, max_samples=max_samples,
                        rounds=1, warmup=warmup, clock=clock)[0]


def timed_call(fn):
    """(result, seconds) of a single call."""
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def peak_memory(fn):
    """Peak bytes newly allocated (as traced by tracemalloc) during one call of ``fn()``.

    (No ``gc.collect()`` first: with PyTorch and JAX loaded it costs ~0.2 s,
    and memory allocated before the call does not count anyway.)
    """
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if not already:
            tracemalloc.stop()
    return max(0, peak - base)


# ---------------------------------------------------------------------------
# start-up time in a new process
# ---------------------------------------------------------------------------

_STARTUP_SNIPPET = r"""
import time, json, ast
_t0 = time.perf_counter()
import numpy as np
import benchmarks
from benchmarks import workloads, systems
for _path in {files!r}:
    workloads.load_file(_path)
_t1 = time.perf_counter()
wl = workloads.get({workload!r})
size = ast.literal_eval({size!r})
inputs = wl.make_inputs(size, np.random.default_rng({seed}))
system = systems.get_system({system!r})
_t2 = time.perf_counter()
_numba_init = None
if {probe_numba!r}:
    from benchmarks import handwritten
    handwritten.numba_probe(1.0)
    _numba_init = time.perf_counter() - _t2
    _t2 = time.perf_counter()
grad_fn = system.prepare(wl, inputs)
grads = grad_fn()
_t3 = time.perf_counter()
print("STARTUP_JSON " + json.dumps({{"import_s": _t1 - _t0, "inputs_s": _t2 - _t1,
                                    "numba_init_s": _numba_init, "first_grad_s": _t3 - _t2}}))
"""


def _run_python(code, timeout):
    env = dict(os.environ)
    # warm caches include Python's own: let the first process write the bytecode of the
    # project's modules (as installing a package does) for the next ones to read
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = PROJECT_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


_baseline_cache = {}


def python_baseline(repeats=3, timeout=60):
    """Median wall time of ``python -c pass`` (cached per process)."""
    if repeats not in _baseline_cache:
        walls = [_run_python("pass", timeout)[0] for _ in range(repeats)]
        _baseline_cache[repeats] = float(np.median(walls))
    return _baseline_cache[repeats]


def startup(system_name, workload_name, size, seed=1234, repeats=3, timeout=300, probe_numba=True):
    """Start-up cost of one system's gradient in a brand-new process, caches warm.

    Runs ``repeats`` fresh interpreters (after an unmeasured one, when there
    are several, which writes Python's bytecode cache) that each import the benchmark modules
    (and through them NumPy and the system's library), build the inputs and
    call the gradient once.  Call it after the gradient has been run in this
    process, so that on-disk compilation caches (numba ``cache=True``,
    srcdiff's cache) are warm.  Returns medians in seconds:

    * ``total_s``: subprocess wall time minus a bare ``python -c pass``;
    * ``import_s``: importing NumPy and the benchmark modules;
    * ``numba_init_s`` (if ``probe_numba``): the first call of a trivial
      cached numba kernel, i.e. numba's one-time start-up (LLVM and type
      system initialisation, cache machinery) that any numba-based system pays
      once per process;
    * ``first_grad_s``: after that, ``system.prepare`` plus the first gradient
      call (loading this gradient's compiled code from the cache);
    * ``baseline_s``: the bare interpreter start that was subtracted.
    """
    from . import workloads
    code = _STARTUP_SNIPPET.format(workload=workload_name, size=repr(size), seed=seed,
                                   system=system_name, probe_numba=bool(probe_numba),
                                   files=list(workloads.FILES))
    baseline = python_baseline()
    if repeats > 1:
        _run_python(code, timeout)      # a first process writes what the others read warm
    rows = []
    for _ in range(repeats):
        wall, out = _run_python(code, timeout)
        line = [ln for ln in out.splitlines() if ln.startswith("STARTUP_JSON ")][-1]
        info = json.loads(line[len("STARTUP_JSON "):])
        info["wall_s"] = wall
        rows.append(info)
    med = {key: (None if rows[0][key] is None else float(np.median([r[key] for r in rows])))
           for key in rows[0]}
    return {
        "total_s": med["wall_s"] - baseline,
        "import_s": med["import_s"],
        "numba_init_s": med["numba_init_s"],
        "first_grad_s": med["first_grad_s"],
        "baseline_s": baseline,
        "repeats": repeats,
    }
