"""The public API: `grad`, `value_and_grad`, and the callable gradient object."""
import copy
import inspect
import sys
import threading
import warnings

import numpy as np
from numpy import ndarray

from . import native
from .compile import listing, load, restricted
from .emit import generate
from .entry import entry_point
from .errors import SrcdiffError, UndefinedName
from .frontend import lower, signature
from .graph import Op, walk
from .infer import infer, type_of_value
from .locate import RUNTIME_ERRORS, runtime_error
from .patterns import fuse_log_softmax, fuse_powers
from .nones import fold_none_tests
from .source import plain_function


_BUILD_LOCK = threading.RLock()
# numba's advice on compiling the generated modules (`'@' is faster on contiguous arrays`)
# points at their lines, not the user's: it is not shown
warnings.filterwarnings("ignore", module=r".*srcdiff_[0-9a-f]+\Z")


class Gradient:
    """A compiled gradient of a function; call it like the function."""

    def __new__(cls, *args, **kwargs):
        # Python looks `__call__` up on the type, so each gradient has a class of its own,
        # made before any attribute is set (a later change of class slows attribute reads)
        return super().__new__(type(cls.__name__, (cls,), {}))

    def __init__(self, fn, wrt=0, compile=True, with_value=False, debug_nans=False, aot=False):
        fn = plain_function(fn)       # a @numba.njit function: its Python source
        self.fn = fn
        self.compile = compile
        self.aot = aot
        self._native_tried = set()   # signature keys whose native module was looked for or built
        self.debug_nans = debug_nans
        self.with_value = with_value
        self.graph = None   # lowered at the first call, which reads the globals it uses
        try:
            lower(fn)       # so that what srcdiff cannot differentiate is reported here
        except UndefinedName:
            pass            # may be defined further down the module: checked at the first call
        except SrcdiffError as error:
            raise error.with_traceback(None)    # the message points at the user's line
        params, self.where = signature(fn)
        self.params = list(params)
        self.wrt, self.single = normalise_wrt(wrt, self.params, fn, self.where)
        if aot and not compile:
            raise SrcdiffError("aot=True builds compiled code, so it needs compile=True", self.where)
        self._entries = {}
        self._float32_values = set()  # signature keys whose value is a float32 scalar
        self._last_entry = None      # (forward, gradient call, source, gradient) of the last call
        self._fast = None            # tried first: the last signature's compiled gradient
        self._fast_forward = None    # and its compiled forward
        self._fast_paths = {}        # (signature key, compiled function) -> (overloads seen, fast path)
        self.__name__ = getattr(fn, "__name__", "gradient")
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__module__ = getattr(fn, "__module__", None)   # where pickle finds a decorated one
        self.forward = entry_point(self, fn, "_fast_forward", "_checked_forward",
                                   "The function's value, computed by the compiled forward.")
        call = entry_point(self, fn, "_fast", "_checked_call", fn.__doc__)
        type(self).__call__ = staticmethod(call)

    def __reduce__(self):
        module = sys.modules.get(getattr(self.fn, "__module__", None))
        if module is not None and getattr(module, self.fn.__qualname__, None) is self:
            return self.fn.__qualname__     # a decorated function: pickled by name, as functions are
        # a gradient's class is its own, so a copy (or an unpickled one) is built again from
        # the arguments; its signatures compile at their first call, from the disk cache
        wrt = self.wrt[0] if self.single else tuple(self.wrt)
        return type(self).__base__, (self.fn, wrt, self.compile, self.with_value,
                                     self.debug_nans, self.aot)

    def _checked_call(self, args):
        """Check the arguments, build their signature if new, and run its gradient."""
        result, key, entry = self._run(args, 1)
        fast = self._fast_path(key, entry[1])
        self._fast = None if fast is None else (fast, entry[2])
        return result

    def _run(self, args, part):
        """(result, signature key, entry) of part 0 (the forward) or 1 (the gradient) of the
        entry for `args` (one per parameter), built if new."""
        key = signature_key(args)
        entry = self._last_entry = self._entries.get(key) or self._build(args, key)
        for retry in (False, True):
            try:
                result = entry[part](*args)
            except Exception as error:
                if read_only_write(error):
                    raise self._read_only_failure(args) from None
                if not compile_failure(error):
                    raise self._translated(error, entry[2], args) from None
                if retry or not (any(is_float32(a) for a in args) or float32_requests(self.graph)):
                    raise self._numba_failure(error) from error
                entry = self._entries[key] = self._last_entry = self._widened(args)
                continue
            if self.aot and key not in self._native_tried:
                self._native_tried.add(key)      # the build is a no-op if the module exists
                native.build(entry[2], tuple(map(widened, args)) if retry else args)
            return result, key, entry

    def _numba_failure(self, error):
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        reason = lines[1] if lines[0].startswith("Failed in") and len(lines) > 1 else lines[0]
        hint = ("compile=False runs the same code with NumPy; this is a srcdiff limitation "
                "worth reporting")
        if "layout 'A'" in reason:      # numba types a C-ordered and a transposed value as one
            hint = ("an array variable holds a C-ordered array and a transposed one (e.g. "
                    "`A = np.sin(A.T)` in a loop), which numba cannot compile: make it C-ordered "
                    "with .copy() (`A = np.sin(A.T).copy()`), or pass compile=False")
        return SrcdiffError(f"numba cannot compile the gradient of `{self.__name__}` for these "
                            f"arguments: {reason}", self.where, hint=hint)

    def _read_only_failure(self, args):
        names = [p for p, a in zip(self.params, args) if isinstance(a, ndarray) and not a.flags.writeable]
        listed = ", ".join(f"`{n}`" for n in names) or "an argument"
        name = names[0] if names else "x"
        return SrcdiffError(f"the function writes into {listed}, a read-only array", self.where,
                            hint=f"pass a writable copy (`{name}.copy()`), or copy it at the top "
                                 f"of the function: `{name} = {name}.copy()`")

    def _widened(self, args):
        """The entry for float32 `args` (or a function asking for float32) when numba cannot type
        the code in float32 (numba makes `float32 array * 0.5` a float64 array, where NumPy keeps
        float32, so a loop's float32 state changes dtype): the float64 build, called on float64
        copies of the float32 arguments, its gradients converted back to their arguments' types.
        In that build the float32 the function asks for (`dtype=np.float32`, `np.float32(v)`)
        is float64 too."""
        wide = tuple(widened(a) for a in args)
        key = signature_key(wide) + ("float32 read as float64",)
        forward, gradient, source, compiled = self._entries.get(key) \
            or self._build(wide, key, widen=True)
        like = [prototype(args[i]) for i in self.wrt]
        single, with_value = self.single, self.with_value

        def narrowed(grads):
            if single:
                return typed_like(grads, like[0])
            return tuple(typed_like(g, a) for g, a in zip(grads, like))

        value_type = np.float32 if signature_key(args) in self._float32_values else float

        def call_forward(*call_args):
            return value_type(forward(*map(widened, call_args)))

        def call_gradient(*call_args):
            result = gradient(*map(widened, call_args))
            return (value_type(result[0]), narrowed(result[1])) if with_value else narrowed(result)
        return call_forward, call_gradient, source, compiled

    def _translated(self, error, source, args):
        """The SrcdiffError to raise for `error`, raised by generated `source` on `args`
        (or `error` itself if it is not one srcdiff explains)."""
        if isinstance(error, FloatingPointError):
            return domain_error(error)
        if isinstance(error, RUNTIME_ERRORS):
            return runtime_error(self, source, args, error)
        return error

    def _fast_path(self, key, compiled):
        """The fast path for signature `key`, rebuilt when numba has compiled more overloads."""
        count = len(getattr(compiled, "overloads", ()))
        cached = self._fast_paths.get((key, compiled))
        if cached is None or cached[0] != count:
            cached = self._fast_paths[key, compiled] = (count, fast_path(key, compiled))
        return cached[1]

    def _checked_forward(self, args):
        """Check the arguments, build their signature if new, and run its forward."""
        value, key, entry = self._run(args, 0)
        fast = self._fast_path(key, entry[0])
        self._fast_forward = None if fast is None else (fast, entry[2])
        return value

    @property
    def source(self):
        """The generated module (forward and gradient) for the most recent call signature."""
        if self._last_entry is None:
            raise SrcdiffError(f"`{self.__name__}` has not been called yet, so no signature is known",
                               hint="call it once, or use .source_for(*example_args)")
        return self._last_entry[2]

    def inspect_llvm(self):
        """numba's LLVM IR of the compiled gradient, per compiled signature (for profiling)."""
        return listing(self._compiled_gradient(), "llvm")

    def inspect_asm(self):
        """The machine code of the compiled gradient, per compiled signature (for profiling)."""
        return listing(self._compiled_gradient(), "asm")

    def _compiled_gradient(self):
        gradient = self._last_entry and self._last_entry[3]
        if not hasattr(gradient, "inspect_llvm"):
            if self.aot and self._last_entry:
                raise SrcdiffError(f"`{self.__name__}` runs a native module built ahead of time, "
                                   "which keeps no listing", hint="inspect it with aot=False")
            raise SrcdiffError(f"`{self.__name__}` has no compiled gradient yet",
                               hint="call it once with compile=True first")
        return gradient

    def source_for(self, *args, **kwargs):
        """The generated module for the signature of `args` (nothing is compiled)."""
        args = self._bind(args, kwargs)
        return self._generate(args)[0]

    def _bind(self, args, kwargs):
        try:
            bound = inspect.signature(self.fn).bind(*args, **kwargs)
        except TypeError as error:    # as calling the function would
            raise TypeError(f"{self.__name__}() {error}") from None
        bound.apply_defaults()
        return tuple(bound.arguments[p] for p in self.params)

    def _generate(self, args, widen=False):
        try:
            return self._generated(args, widen)
        except SrcdiffError as error:
            raise error.with_traceback(None)    # the message points at the user's line

    def _generated(self, args, widen=False):
        types = []
        for name, value in zip(self.params, args):
            ty = type_of_value(value)
            if ty is None:
                raise unsupported_argument(name, value, self.where)
            types.append(ty)
        for i in self.wrt:
            if not types[i].is_float:
                raise SrcdiffError(f"cannot differentiate with respect to `{self.params[i]}`: it is "
                                   f"{types[i]}, not a float or float array", self.where,
                                   hint=f"pass {self.params[i]} as floats, e.g. "
                                        f"np.asarray({self.params[i]}, float)")
        if self.graph is None:
            self.graph = lower(self.fn)
        graph = copy.deepcopy(self.graph)
        if widen:
            read_float32_as_float64(graph)
        fold_none_tests(graph, types)
        fuse_log_softmax(graph)
        fuse_powers(graph)
        tys = infer(graph, types)
        text = "signature (" + ", ".join(f"{p}: {t}" for p, t in zip(self.params, types)) + ")"
        source = generate(graph, tys, self.wrt, self.with_value, graph.names, text,
                          self.debug_nans, self.single)
        value = tys.get(graph.result) if isinstance(graph.result, str) else None
        return source, value is not None and value.dtype == "float32"

    def _keep_types(self, forward, gradient, args, float32_value):
        """`forward` and `gradient` returning 0-d arrays for the 0-d array arguments,
        np.float32 for the np.float32 ones, and an np.float32 value for a float32 function
        (numba returns all of them as Python floats)."""
        kept = {k: prototype(args[i]) for k, i in enumerate(self.wrt)
                if (type(args[i]) is ndarray and args[i].ndim == 0) or type(args[i]) is np.float32}
        if float32_value:
            forward = _float32_result(forward)
        if not kept and not (float32_value and self.with_value):
            return forward, gradient
        single, with_value = self.single, self.with_value

        def call(*call_args):
            result = gradient(*call_args)
            value, grads = result if with_value else (None, result)
            grads = [grads] if single else list(grads)
            for k, like in kept.items():
                grads[k] = typed_like(grads[k], like)
            grads = grads[0] if single else tuple(grads)
            return (np.float32(value) if float32_value else value, grads) if with_value else grads
        return forward, call

    def _build(self, args, key, widen=False):
        with _BUILD_LOCK:     # threads calling a new signature at once build it once
            if key in self._entries:
                return self._entries[key]
            source, float32_value = self._generate(args, widen)
            if float32_value:
                self._float32_values.add(key)
            forward, gradient = self._functions(source, args)
            entry = (*self._keep_types(forward, gradient, args, float32_value), source, gradient)
            self._entries[key] = entry
            return entry

    def _functions(self, source, args):
        """(forward, gradient) of `source`, jitted by numba; with aot, the native ones built for
        the exact types of `args` if they exist (numba's, loaded when needed, for other types)."""
        found = native.find(source, args) if self.aot else None
        if found is None:
            return load(source, self.compile)
        types = native.argument_types(args)
        forward = native.exact(found["forward"], types, lambda: load(source, True)[0])
        gradient = found.get("gradient") or found["value_and_gradient"]
        return forward, native.exact(gradient, types, lambda: load(source, True)[1])


def _float32_result(forward):
    """`forward` returning its value as np.float32."""
    def call(*args):
        return np.float32(forward(*args))
    return call


def domain_error(error):
    return SrcdiffError(str(error), hint="the forward value there is at the edge of the gate's "
                        "domain (log or sqrt at 0, division by zero, overflow)")


def fast_path(key, gradient):
    """What `Gradient.__call__` tries first after a call with signature `key`: the compiled
    gradient restricted to the argument types it has compiled, or None.

    Only for all-array signatures: numba would convert a scalar of another type (an int
    for a float) instead of refusing it, while an array must match in dtype and rank.
    """
    if not hasattr(gradient, "overloads") or not all(type(k) is tuple for k in key):
        return None
    return restricted(gradient)


def unsupported_argument(name, value, where):
    """The SrcdiffError for an argument `type_of_value` refuses."""
    if isinstance(value, ndarray) and not value.dtype.isnative:
        return SrcdiffError(f"argument `{name}` is an array of non-native byte order ({value.dtype.str})",
                            where, hint=f"convert it, e.g. {name}.astype({name}.dtype.newbyteorder('='))")
    if isinstance(value, np.matrix):
        return SrcdiffError(f"argument `{name}` is an np.matrix, whose `*` is a matrix product",
                            where, hint=f"pass a plain array, e.g. np.asarray({name})")
    if isinstance(value, ndarray):
        return SrcdiffError(f"argument `{name}` is an array of {value.dtype}; srcdiff takes arrays "
                            "of float64, float32, integers and booleans", where,
                            hint=f"convert it, e.g. {name}.astype(np.float64)")
    if isinstance(value, np.floating):
        return SrcdiffError(f"argument `{name}` is a NumPy {value.dtype} scalar; srcdiff takes "
                            "float64 and float32", where, hint=f"convert it, e.g. np.float64({name})")
    if isinstance(value, (int, np.integer)):
        return SrcdiffError(f"argument `{name}` is an integer beyond 64 bits ({value})", where,
                            hint="pass it as a float if it is a value, not a size or index")
    return SrcdiffError(f"argument `{name}` is a {type(value).__name__}; srcdiff takes floats, "
                        "ints and NumPy arrays", where, hint="convert it with np.asarray")


def read_only_write(error):
    """Whether `error` is NumPy's or numba's refusal to write into a read-only array."""
    text = str(error)
    return "read-only" in text or "setitem(readonly array" in text


def compile_failure(error):
    """Whether `error` is numba's failure to compile (a NumbaError, or a NotImplementedError
    from its lowering), as opposed to an error the generated code raised when it ran."""
    if isinstance(error, NotImplementedError):
        return True
    errors = sys.modules.get("numba.core.errors")     # not imported: nothing was compiled
    return errors is not None and isinstance(error, errors.NumbaError)


def float32_requests(graph):
    """The ops of `graph` that ask for float32: a dtype or a cast."""
    return [op for op, _ in walk(graph.body) if isinstance(op, Op)
            and (op.params.get("dtype") == "float32" or op.gate == "float32")]


def read_float32_as_float64(graph):
    """Make the float32 `graph` asks for float64, in place."""
    for op in float32_requests(graph):
        if op.gate == "float32":
            op.gate = "float"
        else:
            op.params = {**op.params, "dtype": "float64"}


def is_float32(value):
    return type(value) is np.float32 or (type(value) is ndarray and value.dtype == np.float32)


def widened(value):
    """A float32 argument as float64 (other arguments as they are)."""
    if type(value) is np.float32:
        return np.float64(value)
    if type(value) is ndarray and value.dtype == np.float32:
        return value.astype(np.float64)
    return value


def prototype(argument):
    """What `typed_like` needs of `argument` (kept instead of the argument's data)."""
    if type(argument) is ndarray:
        return np.empty(0, argument.dtype)
    return argument if type(argument) is np.float32 else None


def typed_like(gradient, argument):
    """`gradient` converted to the type of `argument` (an array's dtype, keeping the
    gradient's shape, or an np.float32 scalar); other gradients as they are."""
    if type(argument) is ndarray:
        return np.asarray(gradient).astype(argument.dtype)
    if type(argument) is np.float32:
        return np.float32(gradient)
    return gradient


def signature_key(args):
    """What the generated code depends on: dtype and rank of arrays, type of scalars."""
    return tuple([(a.dtype, a.ndim) if type(a) is ndarray else type(a) for a in args])


def normalise_wrt(wrt, params, fn, where=None):
    """(tuple of argument positions, whether a single gradient is returned)."""
    single = not isinstance(wrt, (tuple, list))
    items = [wrt] if single else list(wrt)
    if not items:
        raise SrcdiffError("`wrt` is empty", where, hint="name at least one argument")
    positions = []
    for item in items:
        if isinstance(item, str):
            if item not in params:
                raise SrcdiffError(f"`wrt` names `{item}`, but `{fn.__name__}` has no such argument "
                                   f"(it takes {', '.join(params)})", where)
            positions.append(params.index(item))
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -len(params) <= item < len(params):
                raise SrcdiffError(f"`wrt={item}` is out of range: `{fn.__name__}` takes "
                                   f"{len(params)} arguments", where)
            positions.append(item % len(params))
        else:
            raise SrcdiffError(f"`wrt` items must be argument names or positions, not {item!r}", where)
    return tuple(positions), single


def grad(fn=None, wrt=0, compile=True, debug_nans=False, aot=False):
    """The gradient of a scalar function w.r.t. `wrt` (a position, a name, or a tuple of them).

    Usable as `@grad`, `@grad(wrt=...)` or `grad(f, wrt=...)`. NaNs and infs propagate
    as in NumPy; with `debug_nans=True` the first one raises, naming the gate and line.
    With `aot=True`, the first call of each signature also builds a native module (once, in
    the cache), which later processes load without importing numba: a fast start-up.
    """
    if fn is None:
        return lambda f: Gradient(f, wrt, compile, debug_nans=debug_nans, aot=aot)
    return Gradient(fn, wrt, compile, debug_nans=debug_nans, aot=aot)


def value_and_grad(fn=None, wrt=0, compile=True, debug_nans=False, aot=False):
    """Like `grad`, but the call returns `(value, gradient)`."""
    if fn is None:
        return lambda f: Gradient(f, wrt, compile, with_value=True, debug_nans=debug_nans, aot=aot)
    return Gradient(fn, wrt, compile, with_value=True, debug_nans=debug_nans, aot=aot)

