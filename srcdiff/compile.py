"""Compile: write a generated module to a file named by its content hash, import it, jit it.

The file name hashes the source together with srcdiff's and numba's versions
and the runtime helpers' source, so a cached module (and numba's cache of its
machine code, kept beside it) is reused only when all of them match.
"""
import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

VERSION = "0.1.0"
# NumPy's semantics for float errors: 1/0 is inf, 0/0 is nan, no exception
JIT_OPTIONS = {"error_model": "numpy"}
_RUNTIME_DIGEST = None
NUMPY_SCALARS = {float: np.float64, int: np.int64}


def cache_dir():
    """The per-user cache folder (SRCDIFF_CACHE_DIR overrides it), created with mode 0700."""
    base = os.environ.get("SRCDIFF_CACHE_DIR")
    if base:
        path = Path(base)
    else:
        root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(root) / "srcdiff"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def clear_cache():
    """Delete every generated module and compiled artefact in the cache folder."""
    folder = cache_dir()
    for entry in folder.rglob("*"):
        if entry.is_file():
            entry.unlink()


def digest(source):
    global _RUNTIME_DIGEST
    if _RUNTIME_DIGEST is None:
        here = Path(__file__).parent
        parts = [(here / name).read_bytes() for name in ("runtime.py", "tape.py", "cached.py",
                                                          "vectorised.py")]
        _RUNTIME_DIGEST = hashlib.sha256(b"".join(parts)).hexdigest()
    key = "\n".join([VERSION, numba_version(), repr(JIT_OPTIONS), _RUNTIME_DIGEST, source])
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def numba_version():
    """numba's version, read without importing numba (or importlib.metadata, slower than
    this whole lookup) when it is not imported yet: from its installed metadata's folder name."""
    numba = sys.modules.get("numba")
    if numba is not None:
        return numba.__version__
    spec = importlib.util.find_spec("numba")
    if spec is not None and spec.origin:
        for entry in Path(spec.origin).parent.parent.glob("numba-*.dist-info"):
            return entry.name[len("numba-"):-len(".dist-info")]
    from importlib.metadata import version
    return version("numba")


def write_module(source):
    """Path of the cache file holding `source`, written atomically if missing or damaged."""
    name = f"srcdiff_{digest(source)}"
    path = cache_dir() / f"{name}.py"
    if path.exists():
        try:
            if path.read_text() == source:
                return name, path
        except (OSError, UnicodeDecodeError):
            pass
        warnings.warn(f"srcdiff: cache file {path} does not match its content hash; rewriting it")
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(source)
    os.replace(tmp, path)
    return name, path


def load(source, compiled):
    """Import the module for `source`; with `compiled`, its functions are numba-jitted (cached)."""
    try:
        name, path = write_module(source)
    except OSError as error:
        warnings.warn(f"srcdiff: cannot write to the cache ({error}); compiling in memory, "
                      "without an on-disk cache")
        return _load_in_memory(source, compiled)
    module = sys.modules.get(name)
    if module is None or getattr(module, "__file__", None) != str(path):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return _functions(module, compiled, cache=True)


def _load_in_memory(source, compiled):
    namespace = {"__name__": f"srcdiff_memory_{digest(source)}"}
    exec(compile(source, namespace["__name__"], "exec"), namespace)
    module = type(sys)(namespace["__name__"])
    module.__dict__.update(namespace)
    return _functions(module, compiled, cache=False)


def _functions(module, compiled, cache):
    """(forward, gradient) of a generated module, jitted once per module when `compiled`."""
    if not compiled:
        gradient = getattr(module, "gradient", None) or module.value_and_gradient
        return with_numpy_scalars(module.forward), with_numpy_scalars(gradient)
    import numba
    jitted = module.__dict__.setdefault("__srcdiff_jitted__", {})
    if not jitted:
        for fn_name in ("forward", "gradient", "value_and_gradient"):
            fn = getattr(module, fn_name, None)
            if fn is not None:
                jitted[fn_name] = numba.njit(cache=cache, **JIT_OPTIONS)(fn)
    return jitted["forward"], jitted.get("gradient") or jitted["value_and_gradient"]


def with_numpy_scalars(fn):
    """`fn` taking Python floats and ints as np.float64 and np.int64, so that its arithmetic
    follows NumPy's semantics (1.0 / 0.0 and 1.0 / 0 are inf with a warning, as in the
    compiled code), not Python's; np.float64 results come back as Python floats, as from
    the compiled code."""
    def call(*args):
        return _as_python_floats(fn(*[NUMPY_SCALARS[type(a)](a) if type(a) in NUMPY_SCALARS
                                      else a for a in args]))
    call.__wrapped__ = fn
    return call


def _as_python_floats(result):
    if type(result) is np.float64:
        return float(result)
    if type(result) is tuple:
        return tuple(_as_python_floats(r) for r in result)
    return result


def listing(dispatcher, kind):
    """numba's `kind` listing ("llvm" or "asm") of each signature `dispatcher` has compiled.
    Code loaded from numba's on-disk cache keeps no listing, so in a process that loaded it,
    the same signatures are compiled again in memory (once, with the same options) to show it."""
    text = _listing_or_none(dispatcher, kind)
    if text is None:
        import numba
        fresh = numba.njit(**JIT_OPTIONS)(dispatcher.py_func)
        for signature in dispatcher.signatures:
            fresh.compile(signature)
        text = _listing_or_none(fresh, kind)
    return text


def _listing_or_none(dispatcher, kind):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = getattr(dispatcher, f"inspect_{kind}")()
    if any("cached code" in str(w.message) for w in caught):
        return None
    return text


def restricted(dispatcher):
    """A dispatcher running the overloads `dispatcher` has compiled so far, and raising
    TypeError for other argument types instead of compiling them."""
    import numba
    fixed = numba.njit(**JIT_OPTIONS)(dispatcher.py_func)
    for result in dispatcher.overloads.values():
        fixed.add_overload(result)
    fixed.disable_compile()
    return fixed
