"""NaN reporting, and a cache that stays correct when damaged, unwritable or shared."""
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff.compile import write_module
import robust_models
from robust_models import log_of, quotient, quotient_sum, root_sum, scalar_log_and_root, smooth

HERE = Path(__file__).parent


@pytest.mark.parametrize("compile", [True, False])
def test_nans_propagate_by_default(compile):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        grad = srcdiff.grad(root_sum, compile=compile)(np.array([1.0, 0.0, 4.0]))
    assert grad[0] == 1.0 and np.isinf(grad[1]) and grad[2] == 0.5


@pytest.mark.parametrize("compile", [True, False])
def test_debug_nans_names_the_gate_and_line(compile):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(srcdiff.SrcdiffError) as info:
            srcdiff.grad(root_sum, compile=compile, debug_nans=True)(np.array([1.0, 0.0, 4.0]))
    message = str(info.value)
    line = root_sum.__code__.co_firstlineno + 1
    assert "gate `sqrt`" in message and f"robust_models.py:{line}" in message, message
    ok = srcdiff.grad(root_sum, compile=compile, debug_nans=True)(np.array([1.0, 4.0]))
    assert np.allclose(ok, [1.0, 0.5])


def test_unwritable_cache_falls_back_to_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SRCDIFF_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="compiling in memory"):
        grad = srcdiff.grad(smooth)(np.array([0.5, -1.0]), np.array([2.0, 0.3]))
    assert np.allclose(grad, srcdiff.grad(smooth, compile=False)(np.array([0.5, -1.0]),
                                                                  np.array([2.0, 0.3])))


def test_damaged_cache_file_is_reported_and_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCDIFF_CACHE_DIR", str(tmp_path))
    source = srcdiff.grad(smooth).source_for(np.ones(2), np.ones(2))
    name, path = write_module(source)
    path.write_text(source[: len(source) // 2])           # truncated
    with pytest.warns(UserWarning, match="does not match its content hash"):
        again_name, again_path = write_module(source)
    assert again_path.read_text() == source and again_name == name


def test_cache_folder_is_private_and_clearable(tmp_path, monkeypatch):
    folder = tmp_path / "private"
    monkeypatch.setenv("SRCDIFF_CACHE_DIR", str(folder))
    srcdiff.grad(smooth, compile=False)(np.ones(2), np.ones(2))
    assert folder.stat().st_mode & 0o777 == 0o700
    assert any(folder.iterdir())
    srcdiff.clear_cache()
    assert not [p for p in folder.rglob("*") if p.is_file()]


def test_threads_compiling_one_function_agree():
    x, w = np.linspace(-1, 1, 7), np.linspace(0.5, 2, 7)
    expected = srcdiff.grad(smooth, compile=False)(x, w)
    g = srcdiff.grad(smooth)
    results, errors = [], []

    def work():
        try:
            results.append(g(x, w))
        except Exception as error:   # collected and reported below
            errors.append(error)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 8
    assert all(np.allclose(r, expected) for r in results)


def test_processes_compiling_one_function_agree(tmp_path):
    code = (
        "import sys, numpy as np, srcdiff\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from robust_models import smooth\n"
        "x, w = np.linspace(-1, 1, 7), np.linspace(0.5, 2, 7)\n"
        "print(repr(srcdiff.grad(smooth, wrt=(0, 1))(x, w)[1].tolist()))\n"
    )
    env = dict(os.environ, SRCDIFF_CACHE_DIR=str(tmp_path / "shared"))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    values = {o[0].strip() for o in outputs}
    assert len(values) == 1
    x, w = np.linspace(-1, 1, 7), np.linspace(0.5, 2, 7)
    expected = srcdiff.grad(smooth, wrt=(0, 1), compile=False)(x, w)[1]
    assert np.allclose(eval(values.pop()), expected)


def test_gradients_compiled_in_two_processes_run_their_own_code_when_loaded_together(tmp_path):
    # each process compiles one function of every pair into the shared cache; the last
    # process loads all of them, whose cached code calls runtime helpers of one factory
    def run(names):
        code = (
            "import sys, numpy as np, srcdiff\n"
            f"sys.path.insert(0, {str(HERE)!r})\n"
            "import robust_models\n"
            "X = np.linspace(-1.0, 2.0, 12).reshape(3, 4) ** 2\n"
            f"for name in {names!r}:\n"
            "    f = getattr(robust_models, name)\n"
            "    x = X.ravel() if name in ('largest', 'smallest') else X\n"
            "    value, grad = srcdiff.value_and_grad(f)(x)\n"
            "    print(name, repr(value), repr(grad.ravel().tolist()))\n"
        )
        env = dict(os.environ, SRCDIFF_CACHE_DIR=str(tmp_path / "shared"))
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in done.stdout.splitlines()}

    firsts, seconds = zip(*robust_models.FACTORY_PAIRS)
    run(list(firsts))
    run(list(seconds))
    together = run(list(firsts + seconds))
    X = np.linspace(-1.0, 2.0, 12).reshape(3, 4) ** 2
    for name in firsts + seconds:
        f = getattr(robust_models, name)
        x = X.ravel() if name in ("largest", "smallest") else X
        value, grad = srcdiff.value_and_grad(f, compile=False)(x)
        got_value, got_grad = together[name].split(" ", 1)
        assert np.isclose(eval(got_value), value, rtol=1e-12), name
        np.testing.assert_allclose(eval(got_grad), grad.ravel(), rtol=1e-12, err_msg=name)


def test_inspect_llvm_shows_the_compiled_gradient():
    g = srcdiff.grad(smooth)
    with pytest.raises(srcdiff.SrcdiffError):
        g.inspect_llvm()
    g(np.ones(3), np.ones(3))
    listing = g.inspect_llvm()
    assert listing and all("define" in text for text in listing.values())


def test_inspection_works_in_a_process_that_loaded_the_gradient_from_the_cache(tmp_path):
    # numba keeps no IR for code it loads from its cache; the listing must still be real
    code = (
        "import sys, numpy as np, srcdiff\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from robust_models import smooth\n"
        "g = srcdiff.grad(smooth)\n"
        "g(np.ones(3), np.ones(3))\n"
        "llvm, asm = g.inspect_llvm(), g.inspect_asm()\n"
        "print(min(len(t) for t in llvm.values()), min(len(t) for t in asm.values()),\n"
        "      all('define' in t for t in llvm.values()))\n"
    )
    env = dict(os.environ, SRCDIFF_CACHE_DIR=str(tmp_path / "cache"), PYTHONWARNINGS="error::UserWarning")
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=600) for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), [run.stderr[-2000:] for run in runs]
    cold, warm = (run.stdout.split() for run in runs)
    assert cold[2] == warm[2] == "True"
    assert int(warm[0]) > 1000 and int(warm[1]) > 1000


# ---- edges of the domain: NumPy's semantics, forward and backward, in both modes -------------
def numpy_values(fn, *args):
    with np.errstate(all="ignore"):
        return fn(*[np.float64(a) if isinstance(a, float) else a for a in args])


@pytest.mark.parametrize("compile", [True, False])
@pytest.mark.parametrize("x, y", [(1.0, 0.0), (-2.0, 0.0), (0.0, 0.0)])
def test_division_by_zero_follows_numpy(compile, x, y):
    # d(x/y)/dx = 1/y, d(x/y)/dy = -x/y^2: inf, -inf or nan exactly where NumPy gives them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, (dx, dy) = srcdiff.value_and_grad(quotient, wrt=(0, 1), compile=compile)(x, y)
        arrays = srcdiff.grad(quotient_sum, wrt=(0, 1), compile=compile)(np.array([x, 1.0]),
                                                                     np.array([y, 2.0]))
    expected = numpy_values(lambda a, b: (a / b, 1.0 / b, -a / (b * b)), x, y)
    np.testing.assert_array_equal([value, dx, dy], expected)
    np.testing.assert_array_equal(arrays[0], [expected[1], 0.5])
    np.testing.assert_array_equal(arrays[1], [expected[2], -0.25])


@pytest.mark.parametrize("compile", [True, False])
def test_log_at_zero_follows_numpy(compile):
    x = np.array([0.0, 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, grad = srcdiff.value_and_grad(log_of, compile=compile)(x)
    assert value == -np.inf
    np.testing.assert_array_equal(grad, [np.inf, 1.0, 0.5])


@pytest.mark.parametrize("compile", [True, False])
def test_scalar_log_and_sqrt_at_zero_follow_numpy(compile):
    # log(0) = -inf, sqrt(0) = 0; both derivatives are +inf there (1/x and 1/(2 sqrt x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, grad = srcdiff.value_and_grad(scalar_log_and_root, compile=compile)(0.0)
        assert srcdiff.grad(scalar_log_and_root, compile=compile)(-1.0) != srcdiff.grad(
            scalar_log_and_root, compile=compile)(-1.0)    # nan, as NumPy's log and sqrt of -1
    assert value == -np.inf and grad == np.inf
