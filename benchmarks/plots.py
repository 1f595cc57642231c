"""Plots of a benchmark result (matplotlib, Agg backend, PNG files).

* ``<stem>-scaling-lennard_jones.png`` and ``<stem>-scaling-pendulum.png`` (and one per
  workload loaded from a file, with two or more numeric sizes): gradient time per call
  against problem size, log-log, one line per system, with the hand-written forward as a
  dashed reference.
* ``<stem>-speedup-vs-pytorch.png``: gradient speed-up over PyTorch eager per
  workload, at each workload's representative size, log scale.
"""

import os

from . import workloads

SCALING_PLOTS = ["lennard_jones", "pendulum"]   # and every workload loaded from a file

# One fixed colour/marker per system so all plots agree.
STYLE = {
    "handwritten": dict(color="#222222", marker="o", label="hand-written numba"),
    "srcdiff": dict(color="#d62728", marker="*", label="srcdiff"),
    "pytorch": dict(color="#ee7f0e", marker="s", label="PyTorch eager"),
    "autograd": dict(color="#2ca02c", marker="^", label="HIPS autograd"),
    "jax": dict(color="#1f77b4", marker="D", label="JAX (jit)"),
}
_EXTRA_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def _style(name, _cache={}):
    if name in STYLE:
        return STYLE[name]
    if name not in _cache:
        _cache[name] = dict(color=_EXTRA_COLORS[len(_cache) % len(_EXTRA_COLORS)], marker="v", label=name)
    return _cache[name]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _timed(records):
    return [r for r in records if r.get("grad") and r["status"] in ("ok", "ref", "unchecked")]


def _dtype(records, workload_name=None):
    """The dtype the records ran in ("float64", "float32", or both)."""
    found = sorted({r.get("dtype", "float64") for r in records
                    if workload_name is None or r["workload"] == workload_name})
    return "+".join(found) or "float64"


def _speedup_ticks(ax):
    """Plain labels (0.5, 1, 2, 5, 10, ...) on the log axis, however short its range."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def scaling_plot(result, workload_name, path):
    plt = _plt()
    wl = workloads.get(workload_name)
    recs = [r for r in _timed(result["records"]) if r["workload"] == workload_name]
    systems = list(dict.fromkeys(r["system"] for r in recs))
    if not recs or len({r["size_label"] for r in recs}) < 2 or not all(
            isinstance(r["size"], (int, float)) for r in recs):
        return None
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=110)
    for name in systems:
        pts = sorted((r["size"], r["grad"]["median_s"]) for r in recs if r["system"] == name)
        st = _style(name)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=st["marker"], color=st["color"],
                label=st["label"] + " — gradient", linewidth=1.8, markersize=6)
    fwd = sorted((r["size"], r["forward"]["median_s"]) for r in recs
                 if r["system"] == "handwritten" and r.get("forward"))
    if fwd:
        ax.plot([p[0] for p in fwd], [p[1] for p in fwd], linestyle="--", color="#888888",
                marker=".", label="hand-written numba — forward only")
    # guide line for the expected complexity
    xs = sorted({r["size"] for r in recs})
    first = sorted((r["size"], r["grad"]["median_s"]) for r in recs if r["system"] == systems[0])
    if wl.scaling:
        power = wl.scaling
        x0, y0 = first[0]
        exponent = {1: "", 2: "²", 3: "³"}.get(power, f"^{power}")
        ax.plot(xs, [y0 * (x / x0) ** power * 0.5 for x in xs], linestyle=":", color="#bbbbbb",
                label=f"∝ {wl.size_name.split()[-1]}{exponent} (guide)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([str(x) for x in xs])
    ax.minorticks_off()
    ax.set_xlabel(wl.size_name)
    clock = result.get("settings", {}).get("clock", "wall")
    ax.set_ylabel(f"time per call [s]  (median, {clock} clock, log scale)")
    ax.set_title(f"{workload_name}: gradient time vs size\n{wl.title}; "
                 f"{_dtype(recs)}, 1 thread",
                 fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def speedup_plot(result, path, quick=False):
    plt = _plt()
    recs = _timed(result["records"])
    torch_t = {}
    for r in recs:
        if r["system"] == "pytorch":
            torch_t[(r["workload"], r["size_label"])] = r["grad"]["median_s"]
    if not torch_t:
        return None
    groups = []   # (label, {system: speed-up})
    for wl in workloads.every():
        label = wl.size_label(wl.representative_for(quick))
        base = torch_t.get((wl.name, label))
        if base is None:
            continue
        vals = {r["system"]: base / r["grad"]["median_s"] for r in recs
                if r["workload"] == wl.name and r["size_label"] == label}
        broken = {r["system"]: r["status"] for r in result["records"] if r["workload"] == wl.name
                  and r["size_label"] == label and r["status"] in ("FAILED", "ERROR")}
        groups.append((f"{wl.name}\n{label}", vals, broken))
    if not groups:
        return None
    systems = list(dict.fromkeys(s for _, v, b in groups for s in [*v, *b]))
    import numpy as np
    width = 0.8 / max(len(systems), 1)
    fig, ax = plt.subplots(figsize=(max(7.5, 1.6 * len(groups) + 2), 5.4), dpi=110)
    x = np.arange(len(groups))
    for k, name in enumerate(systems):
        ys = [v.get(name, np.nan) for _, v, _ in groups]
        st = _style(name)
        pos = x - 0.4 + width * (k + 0.5)
        bars = ax.bar(pos, ys, width * 0.92, color=st["color"], label=st["label"])
        for b, y, (_, _, broken) in zip(bars, ys, groups):
            if np.isfinite(y):
                txt = f"{y:.0f}" if y >= 10 else (f"{y:.1f}" if y >= 1 else f"{y:.2g}")
                ax.annotate(txt, (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom",
                            fontsize=7, xytext=(0, 1), textcoords="offset points")
            elif name in broken:        # no bar: say why where it would stand
                ax.annotate(broken[name], (b.get_x() + b.get_width() / 2, 1.0), ha="center",
                            va="bottom", fontsize=7, rotation=90, color=st["color"],
                            xytext=(0, 2), textcoords="offset points")
    ax.axhline(1.0, color="#666666", linewidth=1)
    ax.set_xlim(-0.5, len(groups) - 0.5)       # slots of systems with no bar included
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([g[0] for g in groups], fontsize=9)
    ax.set_ylabel("speed-up over PyTorch eager  (× faster, log scale)")
    clock = result.get("settings", {}).get("clock", "wall")
    ax.set_title("Gradient speed-up over PyTorch eager (higher is better)\n"
                 f"one representative size per workload; {_dtype(recs)}, 1 thread, "
                 f"{clock}-clock medians",
                 fontsize=11)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ymax = max(v for _, d, _ in groups for v in d.values() if np.isfinite(v))
    ymin = min(v for _, d, _ in groups for v in d.values() if np.isfinite(v))
    ax.set_ylim(min(ymin, 1.0) / 2.5, ymax * 3)
    _speedup_ticks(ax)
    columns = max(1, min(len(systems), int(fig.get_figwidth() // 2.2)))
    ax.legend(fontsize=8.5, ncol=columns, loc="upper center", bbox_to_anchor=(0.5, -0.14),
              frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def make_plots(result, out_dir, stem, quick=False):
    paths = []
    for name in SCALING_PLOTS + [w.name for w in workloads.every() if getattr(w, "file", None)]:
        p = scaling_plot(result, name, os.path.join(out_dir, f"{stem}-scaling-{name}.png"))
        if p:
            paths.append(p)
    p = speedup_plot(result, os.path.join(out_dir, f"{stem}-speedup-vs-pytorch.png"), quick=quick)
    if p:
        paths.append(p)
    return paths
