"""Native: the compiled forward and gradient as an extension module, loaded without numba.

With `grad(..., aot=True)`, the process that first compiles a signature also builds its
functions ahead of time (numba.pycc, with the same options as the jitted ones, for this
machine's CPU) into a native module in the cache folder. A new process generating the same
source for arguments of the same exact types imports that module instead of numba, whose
import and initialisation are most of a process's start-up.
"""
import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import sys
import warnings

import numpy as np

from .compile import JIT_OPTIONS, cache_dir, digest, load

FUNCTIONS = ("forward", "gradient", "value_and_gradient")
SCALARS = {float: "f8", int: "i8", bool: "b1"}


def argument_types(args):
    """The arguments' types as numba tells them apart (for arrays: dtype, rank, layout,
    writability and alignment), as text; None if one of them has no native form."""
    parts = []
    for a in args:
        if type(a) is np.ndarray:
            flags = a.flags
            layout = "C" if flags.c_contiguous else "F" if flags.f_contiguous else "A"
            parts.append(f"{a.dtype.str}[{a.ndim}{layout}{'w' if flags.writeable else 'r'}"
                         f"{'a' if flags.aligned else 'u'}]")
        elif type(a) in SCALARS:
            parts.append(SCALARS[type(a)])
        elif isinstance(a, np.generic):
            parts.append(a.dtype.str)
        else:
            return None
    return ",".join(parts)


@functools.lru_cache(maxsize=None)
def cpu_fingerprint():
    """This machine's CPU model and instruction sets (the native code is built for them), or
    '' where they cannot be read, and the code is built for a generic CPU instead."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [ln for ln in info.read().splitlines()[:40]
                     if ln.startswith(("model name", "flags", "Features", "CPU part"))]
    except OSError:
        return ""
    return hashlib.sha256("\n".join([platform.machine(), *lines]).encode()).hexdigest()[:12]


def module_name(source, types):
    """The module's name: a hash of the generated source (with srcdiff's and numba's
    versions), the argument types, NumPy's version (its C interface) and the CPU."""
    key = "\n".join([digest(source), types, np.__version__, cpu_fingerprint()])
    return "srcdiff_native_" + hashlib.sha256(key.encode()).hexdigest()[:20]


def module_path(source, args):
    """(name, path) of the native module for `source` and the exact types of `args`, or
    None if an argument has no native form or there is no cache folder."""
    types = argument_types(args)
    if types is None:
        return None
    name = module_name(source, types)
    try:
        return name, cache_dir() / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
    except OSError:     # the cache folder cannot be made: compile.load has said so
        return None


def find(source, args):
    """The native functions {name: function} built for `source` and the exact types of
    `args`, or None if there is no such module. One that cannot be loaded is deleted, so
    that the next build replaces it."""
    located = module_path(source, args)
    if located is None or not located[1].exists():
        return None
    name, path = located
    module = sys.modules.get(name)
    if module is None:
        try:
            preload_blas()
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except (ImportError, OSError) as error:
            warnings.warn(f"srcdiff: cannot load the native module {path} ({error}); deleted "
                          "it, numba's code runs and the module is built again")
            path.unlink(missing_ok=True)
            return None
        sys.modules[name] = module
    return {fn: getattr(module, fn) for fn in FUNCTIONS if hasattr(module, fn)}


def exact(native_fn, types, fallback):
    """`native_fn` for arguments of exactly `types` (it would misread others), `fallback()`
    (the numba-jitted function, looked up once) for any others."""
    fallback = functools.lru_cache(maxsize=None)(fallback)

    def call(*args):
        if argument_types(args) == types:
            return native_fn(*args)
        return fallback()(*args)
    return call


def preload_blas():
    """Import SciPy's BLAS table (which the native code calls for matrix products) without
    the rest of scipy.linalg, whose import would double a small process's start-up."""
    if "scipy.linalg" in sys.modules or "scipy.linalg.cython_blas" in sys.modules:
        return
    scipy = importlib.util.find_spec("scipy")
    if scipy is None or not scipy.submodule_search_locations:
        return
    folder = os.path.join(scipy.submodule_search_locations[0], "linalg")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, "cython_blas" + suffix)
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("scipy.linalg.cython_blas", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules["scipy.linalg.cython_blas"] = module
            return


def build(source, args):
    """Build the native module of `source` for the exact types of `args`, unless it exists.
    A failure is a warning: the process goes on with numba's code."""
    located = module_path(source, args)
    if located is None or located[1].exists():
        return
    try:
        _build(source, args, *located)
    except Exception as error:      # a missing C compiler, a numba refusal: keep the jitted code
        warnings.warn(f"srcdiff: cannot build the native module for this gradient "
                      f"({type(error).__name__}: {str(error).strip()[:300]}); numba's code "
                      "runs instead, in this process and the next")


def _build(source, args, name, path):
    import shutil
    import tempfile

    import numba
    from numba.core.compiler_lock import global_compiler_lock
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # numba.pycc is pending deprecation
        from numba.pycc import CC, compiler
    argtypes = tuple(numba.typeof(a) for a in args)
    forward, gradient = load(source, True)
    folder = tempfile.mkdtemp(dir=path.parent, prefix=".build-")
    try:
        cc = CC(name, source_module=sys.modules[forward.py_func.__module__])
        cc.output_dir = folder
        if cpu_fingerprint():
            cc.target_cpu = "host"
        for dispatcher in (forward, gradient):
            dispatcher.compile(argtypes)
            cc.export(dispatcher.py_func.__name__,
                      dispatcher.overloads[argtypes].signature)(dispatcher.py_func)
        with global_compiler_lock:      # no other thread's build sees the flags swapped
            plain_flags = compiler.Flags
            compiler.Flags = _with_jit_options(plain_flags)
            try:
                cc.compile()
            finally:
                compiler.Flags = plain_flags
        os.replace(os.path.join(folder, cc.output_file), path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _with_jit_options(flags_class):
    """numba's compiler flags with srcdiff's jit options (numba.pycc takes no options)."""
    class Flags(flags_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for option, value in JIT_OPTIONS.items():
                setattr(self, option, value)
    return Flags
