"""aot=True: the native module built ahead of time is what a new process runs, without numba,
and it computes what the jitted gradient computes."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import warnings

import numpy as np
import pytest

import srcdiff
from srcdiff import native

MODEL = textwrap.dedent('''
    import numpy as np

    def layer_loss(W, x, scale):
        h = np.tanh(W @ x)
        total = 0.0
        for k in range(h.shape[0]):
            total += np.exp(h[k]) * x[k % x.shape[0]]
        return total / scale
''')

NEW_PROCESS = textwrap.dedent('''
    import json, sys
    import numpy as np
    import srcdiff
    from model import layer_loss
    W = np.array(json.loads(sys.argv[1])); x = np.array(json.loads(sys.argv[2]))
    g = srcdiff.value_and_grad(layer_loss, wrt=(0, 1), aot=True)
    out = {}
    value, (dW, dx) = g(W, x, 2.0)
    out["numba_after_first_call"] = "numba" in sys.modules
    out["value"], out["dW"], out["dx"] = value, dW.tolist(), dx.tolist()
    at_zero, _ = g(W, x, 0.0)                     # NumPy's float semantics: no exception
    out["at_zero"] = repr(at_zero)
    out["numba_after_same_types"] = "numba" in sys.modules
    _, (dW_f, _) = g(np.asfortranarray(W), x, 2.0)   # other exact types: numba's code
    out["dW_fortran"] = dW_f.tolist()
    out["numba_after_fortran"] = "numba" in sys.modules
    print(json.dumps(out))
''')


def load_model(folder):
    (folder / "model.py").write_text(MODEL)
    spec = importlib.util.spec_from_file_location("model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


C_COMPILER = (sysconfig.get_config_var("CC") or "cc").split()[0]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(C_COMPILER) is None, reason=f"no C compiler ({C_COMPILER})")
def test_a_new_process_runs_the_native_module_without_numba(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SRCDIFF_CACHE_DIR", str(cache))
    model = load_model(tmp_path)
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((5, 3)), rng.standard_normal(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a failed build warns: fail on it here
        expected = srcdiff.value_and_grad(model.layer_loss, wrt=(0, 1), aot=True)(W, x, 2.0)
    assert len(list(cache.glob("srcdiff_native_*"))) == 1
    reference = srcdiff.value_and_grad(model.layer_loss, wrt=(0, 1), compile=False)(W, x, 2.0)

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]))
    run = subprocess.run([sys.executable, "-c", NEW_PROCESS, json.dumps(W.tolist()),
                          json.dumps(x.tolist())], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.splitlines()[-1])
    assert not out["numba_after_first_call"] and not out["numba_after_same_types"]
    assert out["numba_after_fortran"]
    for result in (expected, reference):
        np.testing.assert_allclose(out["value"], result[0], rtol=1e-13)
        np.testing.assert_allclose(out["dW"], result[1][0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(out["dx"], result[1][1], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(out["dW_fortran"], result[1][0], rtol=1e-12, atol=1e-14)
    assert float(out["at_zero"]) in (np.inf, -np.inf)


UNSET_MODEL = textwrap.dedent('''
    def last_squared(x, n):
        for i in range(n):
            last = x[i] * 2.0
        return last * last
''')

UNSET_PROCESS = textwrap.dedent('''
    import sys
    import numpy as np
    import srcdiff
    from unset_model import last_squared
    g = srcdiff.grad(last_squared, aot=True)
    print(g(np.array([1.5, 2.0]), 2).tolist(), "numba" in sys.modules)
    try:
        g(np.array([1.5, 2.0]), 0)
    except srcdiff.SrcdiffError as error:
        print(str(error).splitlines()[0])
''')


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(C_COMPILER) is None, reason=f"no C compiler ({C_COMPILER})")
def test_the_native_module_raises_for_a_name_read_before_it_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCDIFF_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "unset_model.py").write_text(UNSET_MODEL)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]))
    runs = [subprocess.run([sys.executable, "-c", UNSET_PROCESS], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=600) for _ in range(2)]
    for run in runs:                      # the first builds the module, the second loads it
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0].startswith("[0.0, 16.0]")
        assert "UnboundLocalError" in lines[1] and "'last'" in lines[1], run.stdout
    assert runs[1].stdout.splitlines()[0].endswith("False")     # the native module ran


def test_argument_types_tell_apart_what_numba_compiles_apart():
    a = np.zeros((3, 2))
    kinds = [a, np.asfortranarray(a), a[:, ::2], a.astype(np.float32), np.zeros((3, 2), int),
             np.zeros(6)]
    texts = [native.argument_types([k]) for k in kinds]
    assert len(set(texts)) == len(texts)
    frozen = a.copy()
    frozen.flags.writeable = False
    assert native.argument_types([frozen]) != native.argument_types([a])
    assert native.argument_types([1.0, 2, True, np.float32(1)]) == "f8,i8,b1,<f4"
    assert native.argument_types([[1.0]]) is None


def test_a_failed_build_warns_and_the_jitted_gradient_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCDIFF_CACHE_DIR", str(tmp_path))
    model = load_model(tmp_path)

    def no_compiler(*args):
        raise OSError("no C compiler")
    monkeypatch.setattr(native, "_build", no_compiler)
    W, x = np.ones((2, 3)), np.ones(3)
    with pytest.warns(UserWarning, match="cannot build the native module"):
        value, _ = srcdiff.value_and_grad(model.layer_loss, wrt=(0, 1), aot=True)(W, x, 2.0)
    np.testing.assert_allclose(value, model.layer_loss(W, x, 2.0), rtol=1e-12)


def square(x):
    return x * x


def test_aot_needs_compile():
    with pytest.raises(srcdiff.SrcdiffError, match="compile=True"):
        srcdiff.grad(square, aot=True, compile=False)


def test_aot_without_a_cache_folder_warns_and_runs(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("SRCDIFF_CACHE_DIR", str(blocker / "cache"))     # cannot be made
    with pytest.warns(UserWarning, match="cannot write to the cache"):
        gradient = srcdiff.grad(square, aot=True)(3.0)
    assert gradient == 6.0
