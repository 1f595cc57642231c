"""Command-line driver: check, time and report every system on every workload.

    python -m benchmarks                    # full run (several minutes)
    python -m benchmarks --quick            # small sizes, short measurements (< 1 min)
    python -m benchmarks --only pendulum    # one workload (repeatable / comma list)
    python -m benchmarks --out DIR          # results folder (default benchmarks/results/)

For every workload and size, each available system first computes the
gradient once; it is compared with the hand-written reference (relative
error max|g - g_ref| / max|g_ref| per argument must be below ``RTOL``), and a
wrong gradient is reported as FAILED and not timed.  Then the gradient and
the forward are timed, and the peak memory of one gradient call is taken.
"""

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback

if __name__ == "__main__" and not __package__:   # run as `python benchmarks/run.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    importlib.import_module("benchmarks")   # pins every library to one thread before NumPy loads
    __package__ = "benchmarks"

import numpy as np

from . import plots, timing, workloads
from .systems import AOT, SYSTEMS, as_grad_tuple

RTOL = 1e-6          # gradient check against the hand-written reference
FWD_RTOL = 1e-6      # forward value check
FD_TOL = 1e-5        # finite-difference check of the reference itself
SEED = 1234

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------

def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_bytes(b, traced=True):
    if b is None:
        return "-"
    if b < 1024:
        txt = f"{b} B"
    elif b < 1024 ** 2:
        txt = f"{b / 1024:.1f} KiB"
    else:
        txt = f"{b / 1024 ** 2:.1f} MiB"
    return txt if traced else txt + "*"


def fmt_ratio(x):
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


COLUMNS = ["workload", "size", "system", "grad", "forward", "grad/fwd", "vs hand",
           "first call", "peak mem", "noisy", "status"]


def record_row(r):
    g = r.get("grad") or {}
    f = r.get("forward") or {}
    noisy = []
    if g.get("noisy"):
        noisy.append(f"grad {g['spread']:.0%}")
    if f.get("noisy"):
        noisy.append(f"fwd {f['spread']:.0%}")
    status = r["status"]
    if r.get("message") and status not in ("ok", "ref"):
        status += ": " + r["message"]
    return [
        r["workload"], r["size_label"], r["system"],
        fmt_time(g.get("median_s")), fmt_time(f.get("median_s")),
        fmt_ratio(r.get("grad_over_forward")), fmt_ratio(r.get("ratio_to_handwritten")),
        fmt_time(r.get("first_call_s")),
        fmt_bytes(r.get("peak_mem_bytes"), r.get("memory_traced", True)),
        ", ".join(noisy) if noisy else "",
        status,
    ]


def text_table(rows, header=COLUMNS):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def md_table(rows, header=COLUMNS):
    esc = lambda s: str(s).replace("|", "\\|")
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# machine info
# ---------------------------------------------------------------------------

def _pkg_version(name):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:
        return None


def machine_info():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from . import USABLE_CORES          # before the process was bound to one core
    affinity = len(USABLE_CORES) or None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average_at_start": load,
        "busy_cpus_at_start": foreign_cpu_load(),
        "cpu_model": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {name: _pkg_version(name) for name in
                     ("numpy", "numba", "scipy", "torch", "jax", "jaxlib", "autograd", "matplotlib", "srcdiff")},
        "thread_env": {k: os.environ.get(k) for k in
                       ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                        "NUMBA_NUM_THREADS", "XLA_FLAGS")},
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }
    return info


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

def grad_error(grads, ref):
    """max over arguments of max|g - ref| / max|ref|; None if shapes differ."""
    worst = 0.0
    for g, r in zip(grads, ref):
        if g.shape != r.shape:
            return None, f"shape {g.shape} != {r.shape}"
        if not np.all(np.isfinite(g)):
            return float("inf"), "non-finite gradient"
        scale = max(float(np.max(np.abs(r))) if r.size else 0.0, 1e-300)
        worst = max(worst, float(np.max(np.abs(g - r))) / scale if r.size else 0.0)
    return worst, ""


def fd_probe(wl, inputs, forward, directions=2, step=1e-7):
    """[(direction per wrt argument, central difference of `forward` along it)], with the
    directions random and scaled to a largest entry of 1."""
    rng = np.random.default_rng(7)
    probe = []
    for _ in range(directions):
        vs = []
        for name in wl.wrt:
            v = rng.standard_normal(np.shape(inputs[name]))
            vs.append(v / max(np.max(np.abs(v)), 1e-300) if np.ndim(v) else 1.0)

        def f_at(eps):
            d = dict(inputs)
            for name, v in zip(wl.wrt, vs):
                d[name] = inputs[name] + eps * v
            return scalar(wl, forward(*wl.args(d)), forward)

        probe.append((vs, (f_at(step) - f_at(-step)) / (2 * step)))
    return probe


def scalar(wl, value, fn):
    """`value`, which `fn` returned for workload `wl`, as a float; a clear error if it is not
    a real scalar."""
    if np.ndim(value) != 0 or np.iscomplexobj(value):
        raise ValueError(f"{getattr(fn, '__name__', 'the function')} returns "
                         f"{'an array of shape ' + str(np.shape(value)) if np.ndim(value) else 'a complex number'}"
                         f"; the functions of workload {wl.name!r} must return a real scalar")
    return float(value)


def fd_error(grads, probe):
    """Largest relative difference between the gradient's and the probe's directional
    derivatives."""
    worst = 0.0
    for vs, fd in probe:
        an = float(sum(np.sum(g * v) for g, v in zip(grads, vs)))
        worst = max(worst, abs(fd - an) / max(abs(an), abs(fd), 1e-12))
    return worst


def reference_checks(wl, inputs, grads):
    """Check the hand-written gradient `grads` (computed at `inputs`): its forward, if the
    workload has one, against the plain source, and the gradient by central differences of
    that forward (or of the source). Returns the figures and, under "failure", why the
    gradient cannot be the reference (None if it can)."""
    forward = hand_forward(wl)
    args = wl.args(inputs)
    out = {"source_vs_forward": None, "failure": None}
    if forward is not None:
        try:
            src_val = scalar(wl, wl.source(*args), wl.source)
            ref_val = scalar(wl, forward(*args), forward)
            out["source_vs_forward"] = abs(src_val - ref_val) / max(abs(ref_val), 1e-300)
        except Exception as exc:
            out["source_error"] = _short_exc(exc)
    fd = out["finite_difference"] = fd_error(grads, fd_probe(wl, inputs, forward or wl.source))
    svf = out["source_vs_forward"]
    if svf is not None and svf > FWD_RTOL:
        out["failure"] = (f"hand-written forward differs from the source by {svf:.1e}: the others "
                          "are checked by finite differences of the source")
    elif fd > FD_TOL:
        out["failure"] = (f"hand-written gradient fails its finite-difference check (rel. error "
                          f"{fd:.1e} > {FD_TOL:g}): the others are checked by finite differences")
    return out


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------

def _short_exc(exc):
    msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return msg[:160]


def source_probe(wl, inputs, rec, cfg):
    """(finite-difference probe, value) of the workload's source, which the others are then
    checked against; (None, None), with `rec` marked, if the source cannot be evaluated."""
    try:
        return fd_probe(wl, inputs, wl.source), scalar(wl, wl.source(*wl.args(inputs)), wl.source)
    except Exception as exc:
        failed(rec, exc, cfg, "source: ")
        return None, None


def reference_text(chk):
    """One line on the hand-written reference's check."""
    svf = chk["source_vs_forward"]
    forward = ("source() vs hand-written forward rel. diff "
               + ("%.1e" % svf if svf is not None else chk.get("source_error", "-")) + "; "
               if svf is not None or chk.get("source_error") else "")
    return (f"reference check ({chk['size_label']}): {forward}finite differences vs hand-written "
            f"gradient rel. diff {chk['finite_difference']:.1e}"
            + (f" -- FAILED: {chk['failure']}" if chk["failure"] else ""))


def hand_forward(wl):
    """The forward written by hand for `wl`, or None."""
    from . import handwritten
    return wl.forward or handwritten.FORWARD.get(wl.name)


def print_startup(st):
    print(f"   start-up, new process, warm cache ({st['system']}, {st['size_label']}): "
          f"{fmt_time(st['total_s'])} over bare python (imports {fmt_time(st['import_s'])}, "
          f"numba init {fmt_time(st['numba_init_s'])}, "
          f"prepare + first grad {fmt_time(st['first_grad_s'])})")


def aot_startup(wl, size):
    """Start-up of srcdiff with aot=True: the native module is built here first (once per
    machine, in the cache), then a new process loads it without importing numba."""
    inputs = wl.make_inputs(size, np.random.default_rng(SEED))
    AOT.prepare(wl, inputs)()
    st = timing.startup(AOT.name, wl.name, size, seed=SEED, repeats=3, probe_numba=False)
    st.update(workload=wl.name, size_label=wl.size_label(size), system=AOT.name)
    return st


def float_dtype(wl, inputs):
    """The float dtype of the differentiated inputs ("float64", "float32", or both)."""
    found = sorted({np.asarray(inputs[n]).dtype.name if np.asarray(inputs[n]).dtype.kind == "f"
                    else "float64" for n in wl.wrt})
    return "+".join(found)


def new_record(wl, size, system):
    return {"workload": wl.name, "size": list(size) if isinstance(size, tuple) else size,
            "size_label": wl.size_label(size), "system": system.name, "status": "ok",
            "message": "", "memory_traced": system.memory_traced, "grad": None, "forward": None,
            "first_call_s": None, "forward_first_call_s": None, "peak_mem_bytes": None,
            "grad_error": None, "grad_over_forward": None, "ratio_to_handwritten": None}


def failed(rec, exc, cfg, what=""):
    """Mark `rec` as an ERROR raised by `exc` (the whole message goes to the JSON)."""
    before = rec["message"] + "; " if rec["status"] == "ERROR" else ""
    rec["status"] = "ERROR"
    rec["message"] = before + what + _short_exc(exc)
    rec["error"] = rec.get("error", "") + before + what + f"{type(exc).__name__}: {exc}"
    if cfg["verbose"]:
        traceback.print_exc()


def run_size(wl, size, systems, cfg, log, reference):
    """All systems on one (workload, size).  Returns (records, inputs); inputs is None when
    `make_inputs` failed.

    Phase 1, per system: prepare + first gradient call (the "first call"
    time), check against the reference, prepare + first forward call.
    Phase 2: all gradients and forwards that passed are timed together,
    interleaved (:func:`timing.measure_many`).  Phase 3: peak memory.
    `reference` holds the hand-written gradient's check, made at the workload's first size
    (:func:`reference_checks`); a gradient that fails it is FAILED, not the reference.
    """
    records = [new_record(wl, size, system) for system in systems]
    try:
        inputs = wl.make_inputs(size, np.random.default_rng(cfg["seed"]))
    except Exception as exc:
        for rec in records:
            failed(rec, exc, cfg, "make_inputs: ")
            log(text_row_line(rec, cfg))
        return records, None
    for rec in records:
        rec["dtype"] = float_dtype(wl, inputs)
    timed = []          # (rec, grad_fn, fwd_fn)
    ref_grads = ref_value = probe = None
    for idx, (system, rec) in enumerate(zip(systems, records)):
        is_ref = idx == 0
        # --- prepare + first gradient call, check -----------------------------------
        try:
            t0 = time.perf_counter()
            grad_fn = system.prepare(wl, inputs)
            if grad_fn is None and is_ref:
                rec["status"] = "n/a"
                rec["message"] = "no hand-written gradient: the others are checked by finite differences"
                probe, ref_value = source_probe(wl, inputs, rec, cfg)
                continue
            if grad_fn is None:
                rec["status"] = "n/a"
                rec["message"] = "no code for this workload (a workload brings its own in `peers=`)"
                continue
            result = grad_fn()
            rec["first_call_s"] = time.perf_counter() - t0
            grads = as_grad_tuple(result, len(wl.wrt))
            if is_ref and "check" not in reference:
                reference["check"] = reference_checks(wl, inputs, grads)
        except Exception as exc:
            failed(rec, exc, cfg)
            if is_ref:
                probe, ref_value = source_probe(wl, inputs, rec, cfg)
            continue
        if is_ref and reference["check"]["failure"]:
            rec["status"] = "FAILED"
            rec["message"] = reference["check"]["failure"]
            probe, ref_value = source_probe(wl, inputs, rec, cfg)
            continue
        if is_ref:
            rec["status"] = "ref"
            ref_grads = grads
        elif probe is not None:
            err = rec["grad_error"] = fd_error(grads, probe)
            if err > FD_TOL:
                rec["status"] = "FAILED"
                rec["message"] = f"finite differences: rel. error {err:.2e} > {FD_TOL:g}"
                continue
        elif ref_grads is None:
            rec["status"] = "unchecked"
            rec["message"] = "no reference gradient"
        else:
            err, why = grad_error(grads, ref_grads)
            rec["grad_error"] = err
            if err is None or err > RTOL:
                rec["status"] = "FAILED"
                rec["message"] = why or f"rel. error {err:.2e} > {RTOL:g}"
                continue
        # --- prepare + first forward call, value check --------------------------------
        fwd_fn = None
        try:
            t0 = time.perf_counter()
            fwd_fn = system.prepare_forward(wl, inputs)
            if fwd_fn is not None:
                val = float(fwd_fn())
                rec["forward_first_call_s"] = time.perf_counter() - t0
                if is_ref:
                    ref_value = val
                elif ref_value is not None:
                    ferr = abs(val - ref_value) / max(abs(ref_value), 1e-300)
                    if ferr > FWD_RTOL:
                        rec["message"] = f"forward value off by {ferr:.1e} (not timed)"
                        fwd_fn = None
        except Exception as exc:
            rec["message"] = "forward: " + _short_exc(exc)
            fwd_fn = None
            if cfg["verbose"]:
                traceback.print_exc()
        timed.append((rec, grad_fn, fwd_fn))

    # --- interleaved timing ---------------------------------------------------------
    fns = {}
    for k, (rec, grad_fn, fwd_fn) in enumerate(timed):
        fns[(k, "grad")] = grad_fn
        if fwd_fn is not None:
            fns[(k, "forward")] = fwd_fn
    try:
        ms = timing.measure_many(fns, target=cfg["target"], min_samples=cfg["min_samples"],
                                 clock=cfg["clock"])
    except Exception as exc:
        for rec, _, _ in timed:
            rec["status"] = "ERROR"
            rec["message"] = "timing: " + _short_exc(exc)
        ms = {}
        if cfg["verbose"]:
            traceback.print_exc()
    ref_time = None
    for k, (rec, grad_fn, fwd_fn) in enumerate(timed):
        m, mf = ms.get((k, "grad")), ms.get((k, "forward"))
        if m is None:
            continue
        rec["grad"] = m.as_dict()
        if mf is not None:
            rec["forward"] = mf.as_dict()
            rec["grad_over_forward"] = m.median / mf.median if mf.median > 0 else None
        if rec["status"] == "ref":
            ref_time = m.median
        if ref_time:
            rec["ratio_to_handwritten"] = m.median / ref_time
        # --- peak memory of one gradient call ---------------------------------------
        try:
            rec["peak_mem_bytes"] = timing.peak_memory(grad_fn)
        except Exception as exc:
            rec["message"] = "memory: " + _short_exc(exc)
    for rec in records:
        log(text_row_line(rec, cfg))
    return records, inputs


def text_row_line(rec, cfg):
    cells = record_row(rec)
    widths = cfg["widths"]
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()


def foreign_cpu_load(duration=0.5):
    """CPUs kept busy by other processes, measured from /proc/stat while we sleep; None if unknown."""
    def read():
        with open("/proc/stat") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals[:8]), idle
    try:
        t0, i0 = read()
        time.sleep(duration)
        t1, i1 = read()
    except (OSError, ValueError, IndexError):
        return None
    if t1 <= t0:
        return None
    return round((1.0 - (i1 - i0) / (t1 - t0)) * (os.cpu_count() or 1), 2)


def _busy_warning(busy_cpus, cores):
    """A warning if other processes already keep the CPUs busy (timings will be noisy)."""
    if busy_cpus is None or not cores:
        return ""
    if busy_cpus > 0.3:
        return (f"other processes kept {busy_cpus:.1f} of {cores} CPUs busy just before starting: "
                f"wall-clock timings will be slower and noisier than on an idle machine")
    return ""


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and short measurements (< 1 min)")
    ap.add_argument("--only", action="append", default=[], metavar="WORKLOAD",
                    help="run only this workload (repeatable, or comma-separated); "
                         f"one of {', '.join(workloads.BY_NAME)}")
    ap.add_argument("--workloads", action="append", default=[], metavar="FILE",
                    help="also load the workloads a Python file lists in WORKLOADS (repeatable); "
                         "then only those run, unless --only names others")
    ap.add_argument("--systems", default="", help="comma-separated subset of systems "
                    "(the reference 'handwritten' is always included)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="results folder (default: benchmarks/results/)")
    ap.add_argument("--no-startup", action="store_true", help="skip the new-process start-up measurement")
    ap.add_argument("--no-plots", action="store_true", help="do not draw plots")
    ap.add_argument("--target", type=float, default=None,
                    help="seconds per timing measurement (default 0.2, quick 0.02)")
    ap.add_argument("--clock", choices=("auto",) + timing.CLOCKS, default="auto",
                    help="clock for the reported times: wall, or cpu = process CPU time, which leaves "
                         "out the time the process was not scheduled; auto (default) = wall on an idle "
                         "machine, cpu when other processes keep a CPU busy at start. Both are stored in the JSON")
    ap.add_argument("--strict", action="store_true",
                    help="exit with status 1 if any gradient is FAILED or any system raised an ERROR")
    ap.add_argument("--verbose", action="store_true", help="print tracebacks of errors")
    ap.add_argument("--warm-cache", action="store_true",
                    help="keep srcdiff's own cache folder; by default the run starts from an empty "
                         "one, so that srcdiff's first calls are cold compiles")
    args = ap.parse_args(argv)
    if args.warm_cache:
        return run(args, ap)
    before = os.environ.get("SRCDIFF_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="srcdiff-bench-cache-") as folder:
        os.environ["SRCDIFF_CACHE_DIR"] = folder     # the start-up processes inherit it warm
        try:
            return run(args, ap)
        finally:
            if before is None:
                del os.environ["SRCDIFF_CACHE_DIR"]
            else:
                os.environ["SRCDIFF_CACHE_DIR"] = before


def run(args, ap):
    loaded = []
    for path in args.workloads:
        try:
            loaded += workloads.load_file(path)
        except Exception as exc:
            ap.error(f"--workloads {path}: {_short_exc(exc)}")
    only = [w for item in args.only for w in item.split(",") if w]
    for name in only:
        if name not in workloads.BY_NAME:
            ap.error(f"unknown workload {name!r}; choose from {', '.join(workloads.BY_NAME)}")
    if loaded and not only:
        only = [w.name for w in loaded]
    selected = [w for w in workloads.every() if not only or w.name in only]

    wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
    for name in wanted:
        if name not in {s.name for s in SYSTEMS}:
            ap.error(f"unknown system {name!r}; choose from "
                     + ", ".join(repr(s.name) for s in SYSTEMS))
    systems_all = [s for i, s in enumerate(SYSTEMS) if i == 0 or not wanted or s.name in wanted]

    t_start = time.perf_counter()
    cfg = {
        "quick": args.quick,
        "target": args.target if args.target is not None else (0.02 if args.quick else 0.2),
        "min_samples": 3 if args.quick else 5,
        "seed": SEED,
        "verbose": args.verbose,
        "widths": [14, 12, 24, 10, 10, 8, 8, 10, 10, 6, 6],
    }
    info = machine_info()
    busy = _busy_warning(info["busy_cpus_at_start"], info["logical_cores"])
    cfg["clock"] = args.clock if args.clock != "auto" else ("cpu" if busy else "wall")
    print(f"srcdiff benchmarks ({'quick' if args.quick else 'normal'} mode, one thread per system, "
          f"float64 unless a workload's inputs are float32, {cfg['clock']} clock)")

    # --- which systems are there -------------------------------------------------
    systems, skipped = [], {}
    for s in systems_all:
        try:
            ok, note = s.available()
        except Exception as exc:
            ok, note = False, _short_exc(exc)
        if ok:
            systems.append(s)
        else:
            skipped[s.name] = note
            print(f"note: skipping {s.name}: {note}")
    if not systems or systems[0] is not SYSTEMS[0]:
        print("error: the reference system (hand-written numba) is not available", file=sys.stderr)
        return 2
    versions = {s.name: s.version() for s in systems}
    print("systems: " + ", ".join(f"{s.name} ({versions[s.name]})" for s in systems))

    print(f"machine: {info['cpu_model']}, {info['logical_cores']} logical cores; "
          f"python {info['python']}, numpy {info['versions']['numpy']}")
    if busy:
        print("warning: " + busy + ("; reporting process CPU time (--clock auto)" if args.clock == "auto"
                                    else "; consider --clock cpu" if cfg["clock"] == "wall" else ""))

    records, ref_checks, startups = [], [], []
    for wl in selected:
        t_wl = time.perf_counter()
        print()
        print(f"== {wl.name}: {wl.title}" + (f"  [{wl.notes}]" if wl.notes else ""))
        widths = cfg["widths"]
        widths[0] = max(14, len(wl.name) + 1)
        widths[1] = max(12, *(len(wl.size_label(z)) + 1 for z in wl.sizes_for(args.quick)))
        print("  ".join(h.ljust(w) for h, w in zip(COLUMNS, cfg["widths"])).rstrip())
        reference = {}
        for size in wl.sizes_for(args.quick):
            recs, _ = run_size(wl, size, systems, cfg, print, reference)
            records += recs
            if "check" in reference and "size_label" not in reference["check"]:
                chk = reference["check"]
                chk.update(workload=wl.name, size_label=wl.size_label(size))
                ref_checks.append(chk)
                print("   " + reference_text(chk))
        # --- start-up in a new process (warm caches) --------------------------------
        # (quick mode: only for the first workload; it is ~1 s per process and
        #  dominated by the numba start-up, which is the same for every workload)
        if not args.no_startup and not (args.quick and startups):
            size = wl.representative_for(args.quick)
            ran = {r["system"] for r in records if r["workload"] == wl.name and r.get("grad")}
            for s in systems:
                if not s.measure_startup or s.name not in ran:
                    continue
                try:
                    st = timing.startup(s.name, wl.name, size, seed=SEED, repeats=1 if args.quick else 3)
                    st.update(workload=wl.name, size_label=wl.size_label(size), system=s.name)
                    startups.append(st)
                    print_startup(st)
                except Exception as exc:
                    print(f"   start-up ({s.name}): ERROR {_short_exc(exc)}")
            if not args.quick and any(s.name == "srcdiff" for s in systems):
                try:
                    st = aot_startup(wl, size)
                    startups.append(st)
                    print_startup(st)
                except Exception as exc:
                    print(f"   start-up ({AOT.name}): ERROR {_short_exc(exc)}")
        print(f"   ({wl.name} done in {time.perf_counter() - t_wl:.1f} s)")

    elapsed = time.perf_counter() - t_start
    try:
        info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        info["load_average_at_end"] = None

    # --- outputs ---------------------------------------------------------------------
    os.makedirs(args.out, exist_ok=True)
    stem = "results" + ("-quick" if args.quick else "") + (("-" + "+".join(only)) if only else "")
    result = {
        "mode": "quick" if args.quick else "normal",
        "machine": info,
        "systems": versions,
        "skipped_systems": skipped,
        "settings": {"rtol": RTOL, "forward_rtol": FWD_RTOL, "seed": SEED,
                     "target_s_per_measurement": cfg["target"], "clock": cfg["clock"], "min_samples": cfg["min_samples"],
                     "noise_threshold": timing.NOISE_THRESHOLD},
        "elapsed_s": elapsed,
        "records": records,
        "reference_checks": ref_checks,
        "startup": startups,
        "srcdiff_cache": "warm (kept)" if args.warm_cache else "empty at the start (cold first calls)",
    }
    json_path = os.path.join(args.out, stem + ".json")
    with open(json_path, "w") as fh:
        json.dump(result, fh, indent=1, default=str)

    plot_paths = []
    if not args.no_plots:
        try:
            plot_paths = plots.make_plots(result, args.out, stem, quick=args.quick)
        except Exception as exc:
            print(f"note: plots not drawn: {_short_exc(exc)}")
            if args.verbose:
                traceback.print_exc()

    md_path = os.path.join(args.out, stem + ".md")
    with open(md_path, "w") as fh:
        fh.write(markdown_report(result, plot_paths, args.out))

    print()
    print(text_table([record_row(r) for r in records]))
    n_bad = sum(r["status"] in ("FAILED", "ERROR") for r in records)
    print()
    if n_bad:
        print(f"{n_bad} FAILED/ERROR entries (see the status column; messages are cut short here, "
              f"the JSON has them whole, and --verbose prints tracebacks)")
    print(f"wrote {json_path}")
    print(f"wrote {md_path}")
    for p in plot_paths:
        print(f"wrote {p}")
    print(f"total time {elapsed:.1f} s")
    return 1 if (args.strict and n_bad) else 0


# ---------------------------------------------------------------------------
# markdown
# ---------------------------------------------------------------------------

def markdown_report(result, plot_paths, out_dir):
    info = result["machine"]
    lines = [f"# srcdiff benchmarks ({result['mode']} mode)", ""]
    lines += [
        f"- date: {info['date']}",
        f"- CPU: {info['cpu_model']} ({info['logical_cores']} logical cores, "
        f"{info['usable_cores']} usable); every system pinned to one thread, the process bound to one core",
        f"- {info['platform']}, Python {info['python']}",
        *([f"- OpenBLAS kernels (NumPy's, SciPy's, so numba's): {info['openblas_coretype']}, as "
           "OPENBLAS_CORETYPE in the environment says"] if info.get("openblas_coretype") else []),
        f"- CPUs busy with other processes just before the run: {info.get('busy_cpus_at_start')} "
        f"of {info['logical_cores']}; load average (1, 5, 15 min) at start "
        f"{info.get('load_average_at_start')}, at end {info.get('load_average_at_end')}"
        + (" -- the machine was shared with other work" if _busy_warning(
            info.get("busy_cpus_at_start"), info["logical_cores"]) else ""),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v),
        "- systems: " + ", ".join(f"{k} ({v})" if v else k for k, v in result["systems"].items()),
    ]
    for name, note in result["skipped_systems"].items():
        lines.append(f"- skipped {name}: {note}")
    s = result["settings"]
    lines += [
        f"- gradients checked against the hand-written numba gradient, "
        f"max|g - g_ref| / max|g_ref| <= {s['rtol']:g}; a wrong gradient is FAILED and not timed",
        f"- times are medians over about {s['target_s_per_measurement']} s of repeated calls per "
        f"system (at least {s['min_samples']} samples, after a warm-up call; samples of all systems "
        f"interleaved in rounds), on the **{s['clock']}** clock"
        + (" (process CPU time: leaves out time the process was not scheduled; the JSON also has "
           "wall-clock medians)" if s["clock"] == "cpu" else " (the JSON also has CPU-time medians)")
        + "; "
        f"*noisy* = (p75 - p25) / median > {s['noise_threshold']}",
        f"- total run time {result['elapsed_s']:.0f} s",
        "",
        "Columns: *grad* / *forward* = median time of one gradient / objective call; "
        "*grad/fwd* = the system's gradient over its own forward; *vs hand* = gradient time over "
        "the hand-written numba gradient; *first call* = preparation (tracing/compiling/cache loading) "
        "plus the first gradient call in this process (wall clock); srcdiff's cache folder was "
        f"{result.get('srcdiff_cache', 'as found')}: then srcdiff's first call at a workload's first "
        "size generates and compiles its code (later sizes have the same signature, already "
        "compiled), while the hand-written gradients load from numba's cache; *peak mem* = peak bytes allocated during one "
        "gradient call as seen by tracemalloc (NumPy and numba arrays are traced; values marked * are "
        "PyTorch/XLA, whose allocators tracemalloc cannot see: lower bounds only).",
        "",
    ]
    by_wl = {}
    for r in result["records"]:
        by_wl.setdefault(r["workload"], []).append(r)
    for name, recs in by_wl.items():
        wl = workloads.get(name)
        lines += [f"## {name}: {wl.title}", ""]
        if wl.notes:
            lines += [f"Note: {wl.notes}.", ""]
        lines += [md_table([record_row(r) for r in recs]), ""]
        for chk in result["reference_checks"]:
            if chk["workload"] == name:
                lines += [reference_text(chk)[0].upper() + reference_text(chk)[1:] + ".", ""]
    if result["startup"]:
        lines += ["## Start-up in a new process (warm on-disk cache)", "",
                  "A fresh `python -c` imports the benchmark modules, builds the inputs and calls the "
                  "gradient once. *total* = its wall time minus a bare `python -c pass` start "
                  f"({fmt_time(result['startup'][0]['baseline_s'])}); *imports* = importing NumPy and the "
                  "benchmark modules; *numba init* = importing numba and the first call of a trivial "
                  "cached numba kernel (numba's one-time per-process start-up); *prepare + first grad* "
                  "= after that, importing the system, loading this gradient from the cache and running "
                  "it once. The rest of *total* is building the inputs and interpreter shut-down. "
                  "*srcdiff (aot)* loads the native module `aot=True` built ahead of time, and never "
                  "imports numba (no *numba init*). For a workload loaded from a file, *imports* "
                  "include importing that file and what it imports (numba itself, if it defines a "
                  "hand-written gradient).", ""]
        header = ["workload", "size", "system", "total", "imports", "numba init", "prepare + first grad"]
        rows = [[st["workload"], st["size_label"], st["system"], fmt_time(st["total_s"]),
                 fmt_time(st["import_s"]), fmt_time(st["numba_init_s"]), fmt_time(st["first_grad_s"])]
                for st in result["startup"]]
        lines += [md_table(rows, header), ""]
    if plot_paths:
        lines += ["## Plots", ""]
        for p in plot_paths:
            rel = os.path.relpath(p, out_dir)
            lines += [f"![{os.path.basename(p)}]({rel})", ""]
    lines += ["## How the peers are written", "",
              "PyTorch (eager, CPU, float64, `torch.set_num_threads(1)`), HIPS autograd and JAX "
              "(`jax.jit(jax.grad(...))`, x64) each run their own idiomatic vectorized code: "
              "Lennard-Jones as an N x N broadcast with an upper-triangle mask; the pendulum as a loop "
              "over steps vectorized over the 16 pendula (`lax.fori_loop` in JAX); the GMM as an "
              "(n, K, d) broadcast with library `logsumexp`; the RNN with the input projection "
              "`xs @ Wx + b` done as one matrix product and the recurrence as a loop "
              "(`lax.fori_loop` in JAX). The hand-written numba gradients are fused loops "
              "(see `benchmarks/handwritten.py`).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
