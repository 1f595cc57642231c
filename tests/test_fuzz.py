"""Differential fuzzing of srcdiff's gradients (programs from tests/fuzz_programs.py).

Every generated program is written to its own module file (srcdiff reads the source),
imported, and its gradient is checked:

- srcdiff (compile=False, and numba-compiled for a fixed subset) against central finite
  differences of the plain Python function (float64, eps 1e-6; rtol 1e-4 with an atol
  scaled by the gradient's magnitude). When they differ, finite differences are taken
  again with eps 1e-5: if the two finite differences disagree with each other the point
  is numerically unstable (a branch or kink within eps) and the program is skipped, not
  failed;
- compiled and compile=False against each other (1e-9 relative to the gradient's scale);
- `value_and_grad`'s value against the function's value, and its gradient against `grad`'s;
- calling the same gradient object twice gives the same result, and leaves the arguments
  unchanged;
- for straight-line programs (no loops, in-place writes, copies or math.*), HIPS autograd
  running the same source with `autograd.numpy` as `np` (when autograd is importable).

A SrcdiffError for a generated program is reported as such: the generator must stay
inside the documented subset, so it is a generator bug unless srcdiff is wrong to
reject the program. So is a program that fails, leaves its domain (a non-finite value)
or writes into its own arguments ("invalid").

Sizes:
- normal suite: 175 programs with compile=False plus 25 (smaller) programs also compiled
  (numba compiles every program, seconds each), deterministic (derandomized Hypothesis,
  no shrinking); about 1.5 minutes;
- long mode: `SRCDIFF_FUZZ_EXAMPLES=N python -m pytest -m fuzz tests/test_fuzz.py`
  (N programs with compile=False, N/100 compiled, random seeds);
- campaign: `python tests/test_fuzz.py --seconds 1500 --jobs 2 --out DIR` runs seeded
  programs for a time budget and writes every failure (with its source) to DIR instead
  of stopping at the first one; `--seed S` re-runs one program.

The regression tests at the end are minimised reproducers of bugs the fuzzer found.
"""
import argparse
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import re
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import srcdiff

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fuzz_programs import program_from_seed  # noqa: E402

try:
    from hypothesis import HealthCheck, Phase, given, settings
    from fuzz_programs import programs
except ImportError:  # pragma: no cover
    given = None

try:
    import autograd
except ImportError:  # pragma: no cover
    autograd = None

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:autograd.tracer"),
    pytest.mark.filterwarnings("ignore:.*is faster on contiguous arrays"),
]

EPS = 1e-6
EPS_CHECK = 1e-5
RTOL = 1e-4
MODE_RTOL = 1e-9
AUTOGRAD_RTOL = 1e-7

CI_PLAIN = 175
CI_COMPILED = 25
# numba compiles every program (seconds each): the compiled subset uses smaller programs
COMPILED_WEIGHTS = {"max_stmts": 3, "max_depth": 2}
LONG = int(os.environ.get("SRCDIFF_FUZZ_EXAMPLES", "0") or 0)


# =======================================================================================
# running one program
# =======================================================================================
@dataclass
class Outcome:
    status: str                 # ok | unstable | invalid | mismatch | mode_mismatch |
    #                             value_mismatch | autograd_mismatch | srcdiff_error | crash
    detail: str = ""
    checks: list = field(default_factory=list)

    @property
    def failed(self):
        return self.status not in ("ok", "unstable", "invalid")


def load_module(source, name, directory):
    """Import `source` as module `name` from a real file in `directory`."""
    path = Path(directory) / f"{name}.py"
    if not path.exists() or path.read_text() != source:
        path.write_text(source)
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def fresh(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def finite_differences(fn, args, position, eps):
    """Central differences of scalar fn(*args) w.r.t. args[position] (args never mutated)."""
    def value(shifted):
        call = fresh(args)
        call[position] = shifted
        return float(fn(*call))

    x = args[position]
    if np.ndim(x) == 0:
        return np.float64((value(float(x) + eps) - value(float(x) - eps)) / (2 * eps))
    out = np.zeros(np.shape(x))
    for i in np.ndindex(out.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        out[i] = (value(plus) - value(minus)) / (2 * eps)
    return out


class ApiError(Exception):
    pass


def as_float_tuple(result, count):
    """The gradients of a tuple `wrt` (which must come back as a tuple of that length)."""
    if not isinstance(result, tuple) or len(result) != count:
        raise ApiError(f"wrt is a {count}-tuple but the gradient is a {type(result).__name__}"
                       + (f" of length {len(result)}" if isinstance(result, tuple) else ""))
    return tuple(np.asarray(g, dtype=np.float64) for g in result)


def scale_of(grads):
    return max([float(np.max(np.abs(g))) if np.size(g) else 0.0 for g in grads] + [0.0])


def compare(got, expected, rtol, atol):
    """(ok, worst excess, report) for two tuples of gradients."""
    worst, lines = 0.0, []
    ok = True
    for k, (g, e) in enumerate(zip(got, expected)):
        if np.shape(g) != np.shape(e):
            return False, math.inf, f"gradient {k}: shape {np.shape(g)} != {np.shape(e)}"
        err = np.abs(g - e)
        allowed = rtol * np.abs(e) + atol
        bad = ~(err <= allowed)
        if np.any(bad):
            ok = False
            excess = np.where(bad, err - allowed, -np.inf)
            flat = int(np.argmax(excess))
            idx = np.unravel_index(flat, np.shape(e)) if np.ndim(e) else ()
            worst = max(worst, float(np.max(np.where(bad, err, 0.0))))
            lines.append(f"gradient {k}: {int(np.sum(bad))} of {np.size(e)} entries differ; worst at "
                         f"{list(idx)}: got {np.asarray(g)[idx]!r}, expected {np.asarray(e)[idx]!r}")
    return ok, worst, "\n".join(lines)


def distance(got, expected):
    """The largest absolute difference between two tuples of gradients."""
    return max(float(np.max(np.abs(np.asarray(g) - e))) if np.size(e) else 0.0
               for g, e in zip(got, expected))


def fmt(grads):
    return "\n".join(np.array2string(np.asarray(g), precision=8, max_line_width=120) for g in grads)


def srcdiff_gradient(fn, args, wrt, compiled, with_value=False, keep=None):
    maker = srcdiff.value_and_grad if with_value else srcdiff.grad
    g = maker(fn, wrt=wrt, compile=compiled)
    if keep is not None:
        keep.append(g)
    return g(*fresh(args))


def source_hints(gradient):
    """Known bad shapes in a generated gradient (to group campaign failures)."""
    import re
    try:
        text = gradient.source.split("def gradient", 1)[-1]
    except Exception:
        return ""
    hints = []
    if "top" in text and re.search(r"for \w+ in range\([^\n]*\):\n\s+pass\n", text):
        hints.append("empty reverse loop while the tape is used (pushes never popped?)")
    return "; ".join(hints)


def check_program(prog, directory, compiled=False, use_autograd=True, quick=False):
    """Run every check on one program; returns an Outcome (never raises for srcdiff bugs)."""
    module = load_module(prog.source, prog.module_name, directory)
    fn = module.f
    args = prog.make_args()
    names = [p.name for p in prog.params]
    positions = [names.index(w) for w in prog.wrt]
    wrt = tuple(prog.wrt)
    checks = []

    # the function itself, in its domain
    with np.errstate(all="ignore"):
        try:
            value = float(fn(*fresh(args)))
        except Exception as error:   # a generator bug: the program itself fails
            return Outcome("invalid", f"the program raises {type(error).__name__}: {error}")
    if not math.isfinite(value) or abs(value) > 1e8:
        return Outcome("invalid", f"the program's value is {value}")
    probe = fresh(args)
    with np.errstate(all="ignore"):
        fn(*probe)
    if not all(np.array_equal(a, b) for a, b in zip(probe, args) if isinstance(a, np.ndarray)):
        return Outcome("invalid", "the program writes into its arguments")
    modes = [False, True] if compiled else [False]
    got = {}
    keep = []
    before = fresh(args)
    for mode in modes:
        label = "compiled" if mode else "compile=False"
        try:
            with np.errstate(all="ignore"):
                g = as_float_tuple(srcdiff_gradient(fn, args, wrt, mode, keep=keep), len(wrt))
        except srcdiff.SrcdiffError as error:
            text = str(error)
            kind = "crash" if text.startswith("running the gradient") else "srcdiff_error"
            return Outcome(kind, f"{label}: {text}")
        except Exception as error:
            return Outcome("crash", f"{label}: {type(error).__name__}: {error}\n"
                           + traceback.format_exc(limit=-3))
        got[mode] = g
        checks.append(label)
        try:   # the same Gradient called again gives the same result (no state kept)
            with np.errstate(all="ignore"):
                again = as_float_tuple(keep[-1](*fresh(args)), len(wrt))
        except Exception as error:
            return Outcome("crash", f"{label}, second call: {type(error).__name__}: {error}")
        if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(g, again)):
            return Outcome("mode_mismatch", f"{label}: a second call gives another gradient:\n"
                           f"{fmt(g)}\nthen\n{fmt(again)}", checks)
        if not all(np.array_equal(a, b) for a, b in zip(before, args) if isinstance(a, np.ndarray)):
            return Outcome("crash", f"{label}: the gradient modified its arguments")

    with np.errstate(all="ignore"):
        fd = tuple(finite_differences(fn, args, p, EPS) for p in positions)
    if not all(np.all(np.isfinite(g)) for g in fd):
        return Outcome("invalid", "finite differences are not finite")
    scale = scale_of(fd)
    atol = RTOL * scale + 1e-8 * (1.0 + abs(value))

    # srcdiff vs finite differences (the uncompiled gradient is the reference for the modes)
    ok, worst, report = compare(got[False], fd, RTOL, atol)
    if not ok:
        with np.errstate(all="ignore"):
            fd2 = tuple(finite_differences(fn, args, p, EPS_CHECK) for p in positions)
        stable, _, _ = compare(fd2, fd, RTOL * 10, atol * 10)
        if not stable:
            return Outcome("unstable", "finite differences change with eps", checks)
        hints = source_hints(keep[0]) if keep else ""
        return Outcome("mismatch", f"compile=False vs finite differences{' [' + hints + ']' if hints else ''}:\n{report}\n"
                       f"srcdiff:\n{fmt(got[False])}\nfinite differences:\n{fmt(fd)}", checks)
    if compiled:
        mode_scale = max(scale_of(got[False]), scale_of(got[True]), 1e-300)
        # a gradient that cancels to ~0 is rounding noise of the size of the value's terms
        noise = 1e-12 * max(1.0, abs(value))
        ok, _, report = compare(got[True], got[False], MODE_RTOL, MODE_RTOL * mode_scale + noise)
        if not ok:
            fd_ok, _, _ = compare(got[True], fd, RTOL, atol)
            return Outcome("mode_mismatch" if fd_ok else "mismatch",
                           f"compiled vs compile=False{'' if fd_ok else ' (compiled also != FD)'}:\n"
                           f"{report}\ncompiled:\n{fmt(got[True])}\ncompile=False:\n{fmt(got[False])}\n"
                           f"finite differences:\n{fmt(fd)}", checks)

    if quick:
        return Outcome("ok", "", checks)

    # value_and_grad (uncompiled): the value and the same gradient
    try:
        with np.errstate(all="ignore"):
            v2, g2 = srcdiff_gradient(fn, args, wrt, False, with_value=True)
        g2 = as_float_tuple(g2, len(wrt))
    except srcdiff.SrcdiffError as error:
        return Outcome("crash", f"value_and_grad: {error}")
    except Exception as error:
        return Outcome("crash", f"value_and_grad: {type(error).__name__}: {error}")
    checks.append("value_and_grad")
    if not abs(float(v2) - value) <= 1e-9 * (1.0 + abs(value)):
        return Outcome("value_mismatch", f"value_and_grad value {float(v2)!r} != f(...) {value!r}",
                       checks)
    ok, _, report = compare(g2, got[False], MODE_RTOL, MODE_RTOL * max(scale_of(got[False]), 1e-300))
    if not ok:
        return Outcome("value_mismatch", f"value_and_grad gradient != grad gradient:\n{report}", checks)

    # autograd on the same source
    if use_autograd and autograd is not None and prog.straight_line:
        try:
            ag_module = load_module(prog.autograd_source(), prog.module_name + "_ag", directory)
            with np.errstate(all="ignore"):
                ag = tuple(np.asarray(autograd.grad(ag_module.f, p)(*fresh(args)), dtype=np.float64)
                           for p in positions)
        except Exception as error:  # autograd cannot run it: not srcdiff's problem
            checks.append(f"autograd unavailable ({type(error).__name__})")
        else:
            if any(np.shape(a) != np.shape(g) for a, g in zip(ag, fd)):
                # autograd's own limitation (e.g. np.where does not sum a broadcast scalar)
                return Outcome("ok", "", checks + ["autograd gradient has the wrong shape"])
            checks.append("autograd")
            ok, _, report = compare(got[False], ag, AUTOGRAD_RTOL,
                                    AUTOGRAD_RTOL * max(scale_of(ag), 1e-300) + 1e-12)
            ag_fd, _, _ = compare(ag, fd, RTOL, atol)
            if not ok and (not ag_fd or distance(got[False], fd) < distance(ag, fd)):
                # autograd is further from finite differences than srcdiff (e.g. its np.where
                # does not sum a broadcast operand back): autograd's problem
                checks[-1] = "autograd disagrees with finite differences"
            elif not ok:
                return Outcome("autograd_mismatch", f"srcdiff vs autograd:\n{report}\n"
                               f"srcdiff:\n{fmt(got[False])}\nautograd:\n{fmt(ag)}", checks)
    return Outcome("ok", "", checks)


def signature(outcome):
    """A short, name-independent description of a failure, for grouping campaign results."""
    import re
    text = outcome.detail or ""
    first = text.splitlines()[0] if text else ""
    where = ""
    if outcome.status == "crash":
        code_lines = [ln.strip() for ln in text.splitlines()
                      if ln.startswith("    ") and not ln.strip().startswith(("File ", "^", "~"))]
        where = code_lines[-1] if code_lines else ""
    key = f"{outcome.status}: {first} @ {where}"
    key = re.sub(r"\b(d?)(v|t|acc|buf|c|i|j|s|x|h|trips|skip|broke|top|tape)(_?\d+)(_\d+)*\b",
                 r"\1\2#", key)
    key = re.sub(r"srcdiff_[0-9a-f]+\.py, line \d+", "srcdiff_#.py", key)
    key = re.sub(r"-?\d+\.\d+(e-?\d+)?", "#", key)
    return key[:300]


def assert_program_ok(prog, directory, compiled):
    outcome = check_program(prog, directory, compiled=compiled)
    try:
        from hypothesis import event
        event(f"status: {outcome.status}")
    except Exception:
        pass
    if outcome.status == "invalid":
        pytest.fail(f"generator bug: the generated program is outside its domain: {outcome.detail}\n"
                    f"{prog.describe()}")
    if outcome.failed:
        what = ("srcdiff rejected a generated program (a generator bug unless srcdiff is wrong "
                "to reject it)" if outcome.status == "srcdiff_error" else f"srcdiff {outcome.status}")
        pytest.fail(f"{what}:\n{outcome.detail}\n\n{prog.describe()}")


@pytest.fixture(scope="session")
def fuzz_dir(tmp_path_factory):
    """Folder holding the generated programs' module files."""
    return tmp_path_factory.mktemp("fuzz-programs")


# =======================================================================================
# the CI-sized run and the long mode
# =======================================================================================
if given is not None:
    # no shrinking in the CI-sized run: it reports the failing program as generated (shrink
    # it with `python tests/test_fuzz.py --seed S --minimise`, or run the long mode)
    CI = dict(deadline=None, derandomize=True, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.reuse, Phase.generate])
    LONG_SETTINGS = dict(deadline=None, database=None, print_blob=True,
                         suppress_health_check=list(HealthCheck))

    @settings(max_examples=CI_PLAIN, **CI)
    @given(prog=programs())
    def test_fuzz_programs(fuzz_dir, prog):
        assert_program_ok(prog, fuzz_dir, compiled=False)

    @settings(max_examples=CI_COMPILED, **CI)
    @given(prog=programs(weights=COMPILED_WEIGHTS))
    def test_fuzz_programs_compiled(fuzz_dir, prog):
        assert_program_ok(prog, fuzz_dir, compiled=True)

    @pytest.mark.fuzz
    @pytest.mark.skipif(not LONG, reason="set SRCDIFF_FUZZ_EXAMPLES=N for the long fuzzing run")
    @settings(max_examples=max(LONG, 1), **LONG_SETTINGS)
    @given(prog=programs())
    def test_fuzz_long(fuzz_dir, prog):
        assert_program_ok(prog, fuzz_dir, compiled=False)

    @pytest.mark.fuzz
    @pytest.mark.skipif(not LONG, reason="set SRCDIFF_FUZZ_EXAMPLES=N for the long fuzzing run")
    @settings(max_examples=max(LONG // 100, CI_COMPILED), **LONG_SETTINGS)
    @given(prog=programs())
    def test_fuzz_long_compiled(fuzz_dir, prog):
        assert_program_ok(prog, fuzz_dir, compiled=True)


def test_generator_is_deterministic():
    a, b = program_from_seed(12345), program_from_seed(12345)
    assert a.source == b.source and a.wrt == b.wrt and a.input_seed == b.input_seed


# =======================================================================================
# campaign runner: python tests/test_fuzz.py --seconds N --jobs J --out DIR
# =======================================================================================
class Timeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    def handler(signum, frame):
        raise Timeout()
    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def program_from_record(record):
    """The Program stored in a campaign record (a line of failures-*.jsonl)."""
    from fuzz_programs import Param, Program
    params = [Param(**{**p, "shape": tuple(p["shape"])}) for p in record["params"]]
    return Program(record["source"], params, tuple(record["wrt"]),
                   frozenset(record.get("features", ())), record["input_seed"],
                   f"record seed={record['seed']}")


def campaign_worker(job, jobs, first_seed, deadline, out_dir, compiled_every, weights, queue):
    os.environ.setdefault("SRCDIFF_CACHE_DIR", tempfile.mkdtemp(prefix="srcdiff-fuzz-cache-"))
    directory = tempfile.mkdtemp(prefix="srcdiff-fuzz-progs-")
    counts = {}
    seed = first_seed + job
    log = open(Path(out_dir) / f"failures-{job}.jsonl", "a")
    while time.time() < deadline:
        compiled = compiled_every > 0 and seed % compiled_every == 0
        try:
            prog = program_from_seed(seed, weights)
            with time_limit(300 if compiled else 60):
                outcome = check_program(prog, directory, compiled=compiled)
        except Timeout:
            outcome = Outcome("timeout", "the checks took too long")
        except Exception as error:
            outcome = Outcome("harness_error", f"{type(error).__name__}: {error}\n"
                              + traceback.format_exc())
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        counts["compiled"] = counts.get("compiled", 0) + compiled
        if outcome.status not in ("ok", "unstable"):
            log.write(json.dumps({"seed": seed, "status": outcome.status, "compiled": compiled,
                                  "signature": signature(outcome),
                                  "params": [dataclasses.asdict(p) for p in prog.params],
                                  "input_seed": prog.input_seed,
                                  "detail": outcome.detail, "source": prog.source,
                                  "wrt": prog.wrt, "features": sorted(prog.features)}) + "\n")
            log.flush()
        seed += jobs
    log.close()
    queue.put(counts)


def _blocks_of(lines):
    """(start, end) line ranges of every statement, compound statements with their bodies."""
    out = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("def ", "import ", "#")):
            continue
        indent = len(line) - len(line.lstrip())
        j = i + 1
        while j < len(lines) and lines[j].strip() and len(lines[j]) - len(lines[j].lstrip()) > indent:
            j += 1
        out.append((i, j))
    return out


def _top_level_terms(expr):
    """Split `a + b + c` at top-level `+` signs."""
    terms, depth, start = [], 0, 0
    for k, ch in enumerate(expr):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "+" and depth == 0 and expr[k - 1] == " " and expr[k + 1:k + 2] == " ":
            terms.append(expr[start:k].strip())
            start = k + 1
    terms.append(expr[start:].strip())
    return terms


def _expression_candidates(source):
    """Sources with one expression replaced by one of its operands (largest expressions first)."""
    import ast
    kinds = (ast.Call, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.BoolOp)

    def operands(node):
        if isinstance(node, ast.Call):
            return list(node.args)
        if isinstance(node, ast.BinOp):
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp):
            return [node.operand]
        if isinstance(node, ast.IfExp):
            return [node.body, node.orelse]
        return list(node.values)

    count = sum(isinstance(n, kinds) for n in ast.walk(ast.parse(source)))
    for k in range(count):
        for c in range(len(operands([n for n in ast.walk(ast.parse(source))
                                     if isinstance(n, kinds)][k]))):
            tree = ast.parse(source)
            victim = [n for n in ast.walk(tree) if isinstance(n, kinds)][k]
            child = operands(victim)[c]

            class Swap(ast.NodeTransformer):
                def visit(self, n):
                    return child if n is victim else super().visit(n)
            try:
                yield ast.unparse(Swap().visit(tree)) + "\n"
            except Exception:
                continue


def minimise(prog, directory, compiled=False, statuses=None, log=print):
    """A smaller program failing the same way (line/block deletion, return terms, wrt)."""
    import dataclasses
    first = check_program(prog, directory, compiled=compiled)
    statuses = statuses or {first.status}
    if first.status not in statuses:
        return prog, first
    best, best_outcome = prog, first

    def interesting(candidate):
        try:
            compile(candidate.source, "<candidate>", "exec")
        except SyntaxError:
            return None
        try:
            with time_limit(5):
                outcome = check_program(candidate, directory, compiled=compiled,
                                        quick=first.status == "mismatch")
        except Exception:
            return None
        return outcome if outcome.status in statuses else None

    changed = True
    while changed:
        changed = False
        # wrt: one argument at a time
        if len(best.wrt) > 1:
            for w in best.wrt:
                cand = dataclasses.replace(best, wrt=(w,))
                out = interesting(cand)
                if out:
                    best, best_outcome, changed = cand, out, True
                    break
        # delete statements (and compound statements with their bodies), last first
        lines = best.source.split("\n")
        for start, end in reversed(_blocks_of(lines)):
            if lines[start].strip().startswith("return"):
                continue
            cand_lines = lines[:start] + lines[end:]
            cand = dataclasses.replace(best, source="\n".join(cand_lines))
            out = interesting(cand)
            if out:
                best, best_outcome, changed = cand, out, True
                lines = cand_lines
                log(f"  {len(best.source)} chars")
                break
            # replace a compound statement by its body (dedented)
            head = lines[start].strip()
            if head.startswith(("if ", "else", "elif ", "for ", "while ")) and end > start + 1:
                pad = len(lines[start + 1]) - len(lines[start + 1].lstrip()) - \
                    (len(lines[start]) - len(lines[start].lstrip()))
                body = [ln[pad:] for ln in lines[start + 1:end]]
                cand = dataclasses.replace(best, source="\n".join(lines[:start] + body + lines[end:]))
                out = interesting(cand)
                if out:
                    best, best_outcome, changed = cand, out, True
                    break
        if changed:
            continue
        # drop terms of the return expression, and of other `a + b` right-hand sides
        lines = best.source.split("\n")
        for k, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith("return "):
                lhs, rhs = line[:line.index("return ") + 7], stripped[7:]
            elif " = " in stripped and not stripped.startswith(("if", "for", "while")):
                lhs, rhs = line[:line.index(" = ") + 3], line[line.index(" = ") + 3:]
            else:
                continue
            terms = _top_level_terms(rhs)
            if len(terms) < 2:
                continue
            for t in range(len(terms)):
                new = lhs + " + ".join(terms[:t] + terms[t + 1:])
                cand = dataclasses.replace(best, source="\n".join(lines[:k] + [new] + lines[k + 1:]))
                out = interesting(cand)
                if out:
                    best, best_outcome, changed = cand, out, True
                    break
            if changed:
                break
        if changed:
            continue
        # replace an expression by one of its operands
        for text in _expression_candidates(best.source):
            if len(text) >= len(best.source):
                continue
            cand = dataclasses.replace(best, source=text)
            out = interesting(cand)
            if out:
                best, best_outcome, changed = cand, out, True
                log(f"  {len(best.source)} chars (expression)")
                break
    return best, best_outcome


def main(argv=None):
    parser = argparse.ArgumentParser(description="srcdiff differential fuzzing campaign")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--compiled-every", type=int, default=100,
                        help="also compile every k-th program with numba (0: never)")
    parser.add_argument("--out", default="fuzz-out")
    parser.add_argument("--weights", default="{}", help="JSON feature weights, e.g. '{\"alias\": 1}'")
    parser.add_argument("--seed", type=int, default=None, help="run one seed and print its outcome")
    parser.add_argument("--compiled", action="store_true", help="with --seed: also compile")
    parser.add_argument("--minimise", action="store_true", help="with --seed: shrink the program")
    parser.add_argument("--record", default=None,
                        help="with --seed: take the program from this failures-*.jsonl file "
                             "(as the campaign generated it) instead of regenerating it")
    opts = parser.parse_args(argv)
    weights = json.loads(opts.weights)
    if opts.seed is not None:
        os.environ.setdefault("SRCDIFF_CACHE_DIR", tempfile.mkdtemp(prefix="srcdiff-fuzz-cache-"))
        prog = program_from_seed(opts.seed, weights)
        if opts.record:
            records = [json.loads(line) for line in open(opts.record)]
            prog = program_from_record(next(r for r in records if r["seed"] == opts.seed))
        directory = tempfile.mkdtemp()
        if opts.minimise:
            prog, outcome = minimise(prog, directory, compiled=opts.compiled)
        else:
            outcome = check_program(prog, directory, compiled=opts.compiled)
        print(prog.describe())
        print(outcome.status, outcome.checks)
        print(outcome.detail)
        return 0
    import multiprocessing as mp
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    deadline = time.time() + opts.seconds
    queue = mp.Queue()
    workers = [mp.Process(target=campaign_worker,
                          args=(j, opts.jobs, opts.first_seed, deadline, opts.out,
                                opts.compiled_every, weights, queue)) for j in range(opts.jobs)]
    for w in workers:
        w.start()
    totals = {}
    for _ in workers:
        for k, v in queue.get().items():
            totals[k] = totals.get(k, 0) + v
    for w in workers:
        w.join()
    print(json.dumps(totals, indent=1, sort_keys=True))
    (Path(opts.out) / "totals.json").write_text(json.dumps(totals, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())


# =======================================================================================
# regression tests: minimised programs from fuzzing (each checks both modes against
# central finite differences of the plain function)
# =======================================================================================
def check_regression(fn, args, wrt=0, rtol=1e-6, atol=1e-8):
    """srcdiff's gradient of `fn` (compiled and compile=False) vs central differences."""
    names = list(__import__("inspect").signature(fn).parameters)
    items = list(wrt) if isinstance(wrt, tuple) else [wrt]
    positions = [names.index(w) if isinstance(w, str) else w for w in items]
    expected = tuple(finite_differences(fn, args, p, EPS) for p in positions)
    problems = []
    for compiled in (False, True):
        label = "compiled" if compiled else "compile=False"
        try:
            got = srcdiff.grad(fn, wrt=wrt, compile=compiled)(*fresh(args))
        except Exception as error:
            problems.append(f"{label}: {type(error).__name__}: {str(error)[:300]}")
            continue
        got = got if isinstance(wrt, tuple) else (got,)
        for k, (g, e) in enumerate(zip(got, expected)):
            g = np.asarray(g, dtype=np.float64)
            if g.shape != e.shape or not np.allclose(g, e, rtol=rtol, atol=atol):
                problems.append(f"{label}: gradient {k}: srcdiff {g!r}, finite differences {e!r}")
    assert not problems, "\n".join(problems)


X3 = np.array([0.3, -0.5, 0.7])
Y3 = np.array([0.2, 0.4, -0.1])
X4 = np.array([0.3, -0.5, 0.7, 0.9])


# ---- tape pushes without pops: a loop whose reverse body is empty still pushes on the
# tape, so the loops reversed after it pop the wrong values (silently wrong gradient)
def reg_tape_push_without_pop(x):
    s = 0.0
    for i in range(3):
        s = np.sin(s) + x[i]
    b = x.copy()
    c = 0
    while c < 3:
        b[c] -= 0.5
        c = c + 1
    return s + np.sum(b * b)


def test_regression_tape_push_without_pop():
    check_regression(reg_tape_push_without_pop, [X4])


# ---- an index read of an array whose forward the gradient drops: `dv = np.zeros_like(v)`
# reads `v`, which the gradient no longer computes (NameError)
def reg_index_of_dropped_array(x):
    v = np.sin(x)
    return v[0]


def test_regression_index_of_dropped_array():
    check_regression(reg_index_of_dropped_array, [X3])


def reg_branch_array_dropped(x, y):
    if x[0] > 0.0:
        z = x
    else:
        z = y
    return np.dot(z, y)


def test_regression_branch_array_dropped():
    check_regression(reg_branch_array_dropped, [X3, Y3])


# ---- the trip counter of a loop the gradient's forward drops is never computed
# (`for _ in range(trips)`: NameError)
def reg_while_trips_undefined(s):
    acc = 0.0
    c = 0
    while c < 3:
        acc += s + 0.5
        c = c + 1
    return acc


def test_regression_while_trips_undefined():
    check_regression(reg_while_trips_undefined, [0.3])


def reg_break_trips_undefined(x):
    acc = 0.0
    for i in range(4):
        acc += x[i]
        if x[i] > 0.5:
            break
    return acc


def test_regression_break_trips_undefined():
    check_regression(reg_break_trips_undefined, [X4])


# ---- an inactive array read into an active variable: the backward scatters into the
# array's adjoint, which was never created (NameError)
def reg_scatter_into_inactive_array(x):
    a = np.zeros(3)
    a[1] = 2.0
    s = a[1]
    for i in range(3):
        s = s * x[i]
    return s


def test_regression_scatter_into_inactive_array():
    check_regression(reg_scatter_into_inactive_array, [X3])


# ---- a negative constant index inside a loop: the scatter-promotion pass names a local
# `dx_-1`, and the generated module is a SyntaxError
def reg_negative_index_in_loop(x):
    acc = 0.0
    for i in range(3):
        acc += x[-1] * acc + x[0]
    return acc


def test_regression_negative_index_in_loop():
    check_regression(reg_negative_index_in_loop, [X3])


# ---- storing an array into itself (`b[:] = b`) loses the gradient: the backward adds
# db[...] into db and then zeroes db[...]
def reg_self_store(x):
    b = x * 1.0
    b[:] = b
    return np.sum(b * b)


def test_regression_self_store():
    check_regression(reg_self_store, [X3])


# ---- the adjoint of an array reassigned inside a branch (or loop) is allocated at the
# start of the backward with `np.zeros_like(v)`, but `v` does not exist when the branch was
# not taken / the loop ran no iteration (UnboundLocalError)
def reg_array_in_branch_not_taken(x):
    acc = 0.0
    if x[0] > x[1]:
        v = x * 2.0
        v = v * x
        acc = np.sum(v)
    return acc


def test_regression_array_in_branch_not_taken():
    check_regression(reg_array_in_branch_not_taken, [np.array([0.3, 0.5, 0.7])])


def reg_array_in_loop_without_trips(x, s):
    acc = s
    while acc < 0.5:
        acc = acc + np.sum(x if acc > 0.0 else x * 2.0) + 1.0
    return acc


def test_regression_array_in_loop_without_trips():
    check_regression(reg_array_in_loop_without_trips, [np.array([0.3, 0.5, 0.7]), 0.7])


# ---- a transposed view of an array that is written afterwards: a rule input `b.T` is a
# view, so the backward reads it after the write (here `cos(b.T)` sees row 0 = 0.5)
def reg_transposed_view_written_later(x):
    b = x.copy()
    s = np.sum(np.sin(b.T))
    b[0] = 0.5
    return s + np.sum(b)


def test_regression_transposed_view_written_later():
    check_regression(reg_transposed_view_written_later,
                     [np.array([[0.46, 1.07], [1.65, 0.71], [1.48, 0.55]])])


def reg_transposed_view_written_later_in_loop(x):
    b = x.copy()
    s = 0.0
    for i in range(2):
        s += np.sum(np.sin(b.T))
        b[i, :] = 0.5
    return s


def test_regression_transposed_view_written_later_in_loop():
    check_regression(reg_transposed_view_written_later_in_loop,
                     [np.array([[0.46, 1.07], [1.65, 0.71], [1.48, 0.55]])])


# ---- `b = x * 1.0` (or `x + 0.0`) is emitted as `b = x` (the `* 1.0` peephole drops the
# copy): a later element write into `b` writes into the caller's array
def reg_times_one_is_a_copy(x):
    b = x * 1.0
    b[0] = 0.5
    c = x + 0.0
    c[1] = 0.25
    return np.sum(b * x) + np.sum(c * c)


def test_regression_times_one_is_a_copy():
    for compiled in (False, True):
        x = X3.copy()
        srcdiff.grad(reg_times_one_is_a_copy, compile=compiled)(x)
        assert np.array_equal(x, X3), f"compile={compiled}: the gradient changed its argument to {x}"
    check_regression(reg_times_one_is_a_copy, [X3])


# ---- `c / y` with a constant numerator uses the rule -g * z * z / c, which divides by the
# constant: a numerator of 0.0 (say a global weight set to zero) makes the gradient NaN
REG_ZERO_WEIGHT = 0.0


def reg_zero_constant_numerator(x):
    return np.sum(REG_ZERO_WEIGHT / (1.0 + x * x)) + np.sum(x * x)


def test_regression_zero_constant_numerator():
    check_regression(reg_zero_constant_numerator, [X3])


# ---- Python aliasing: `a += v` on an array name updates the array in place, so another
# name bound to the same array sees the change; srcdiff rebinds `a` instead (it used to
# differentiate a different function silently; now the read of `b` is a clear error)
def reg_augmented_assign_through_alias(x):
    a = x * 2.0
    b = a
    a += x * x
    return np.sum(b * x)


def test_regression_augmented_assign_through_alias():
    check_rejected(reg_augmented_assign_through_alias, "`b` shares its data with `a`")


def check_rejected(fn, message):
    for compiled in (False, True):
        with pytest.raises(srcdiff.SrcdiffError, match=re.escape(message)):
            srcdiff.grad(fn, compile=compiled)(X3.copy())


# ---- a slice of a local array is a view: a later element write into the array changes
# it (srcdiff used to copy the slice and differentiate a different function; now an error)
def reg_view_then_write(x):
    b = np.zeros(3)
    r = b[0:2]
    b[0] = x[0] * 2.0
    return np.sum(r * x[1:])


def test_regression_view_then_write():
    check_rejected(reg_view_then_write, "`r` shares its data with `b`")


# ---- the README's (and the error hint's) advice for writing into a differentiated
# argument, `x = x.copy()` at the top, is itself rejected ("writes into `x`")
def reg_copy_then_write_argument(x):
    x = x.copy()
    for i in range(x.shape[0]):
        x[i] = x[i] * x[i]
    return np.sum(x)


def test_regression_copy_then_write_argument():
    check_regression(reg_copy_then_write_argument, [X3])


# ---- reductions "also as methods" and `.T` / `.reshape` only work on plain names:
# `np.sin(x).sum()`, `(x * 2.0).T`, `x[0:2].reshape(...)` are rejected
def reg_method_on_expression(x):
    return np.sin(x).sum() + np.sum((x * 2.0).T * x) + np.sum(x[0:2].reshape((2, 1)) * x[1:])


def test_regression_method_on_expression():
    check_regression(reg_method_on_expression, [X3])


# ---- a negative constant base in `**`: the constant is emitted unparenthesised, so
# `(-0.5) ** 2` becomes `-0.5 ** 2` = -0.25 in the generated code (wrong value and gradient;
# also for a global `NEG = -0.5` or a helper called with a negative literal)
REG_NEGATIVE = -0.5


def reg_negative_constant_base(x):
    return np.sum((-0.5) ** 2 * x) + REG_NEGATIVE ** 2 * np.sum(x * x)


def test_regression_negative_constant_base():
    check_regression(reg_negative_constant_base, [X3])
