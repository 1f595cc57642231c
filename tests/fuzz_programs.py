"""Random programs in srcdiff's supported subset, for differential fuzzing (see test_fuzz.py).

A program is the source text of a small module: a main function `f` (and sometimes
helper functions `h0`, `h1`, ... it calls), plus what is needed to call it: the shape
and value range of each argument, and which arguments to differentiate.

The generator works on concrete shapes (the sizes `n` and `m` are drawn per program and
appear in the code as `n, m = A.shape` or as `x.shape[k]`), so every index, slice,
reduction axis, matmul and broadcast it writes is valid. It keeps every value inside its
function's domain and O(1):

- each expression carries an upper bound on its magnitude; `exp`, `sinh`, `cosh` only see
  arguments bounded by ~2.5, large operands are squashed with `tanh`;
- `log`, `sqrt`, fractional and negative powers and divisors only see expressions that are
  positive by construction (`1.0 + e * e`, `1.5 + np.sin(e)`, `np.exp(e)`, ...);
- kinks (`abs`, `maximum`, `where`, `max` reductions, branches on active values) only see
  values that depend continuously on random inputs, so ties are vanishingly unlikely
  (the test detects the rare unstable case and skips it).

Two drivers make the choices: `programs()` is a Hypothesis strategy (choices are draws,
so failures shrink), and `program_from_seed(seed)` uses `random.Random(seed)` (fast, and
reproducible from one integer: the campaign runner in test_fuzz.py uses it).
`weights` switches features off or on (a weight of 0 disables one), e.g. to keep
hunting once a bug in one feature is known.
"""
import hashlib
import math
import random
from dataclasses import dataclass, field

import numpy as np

try:  # the strategy needs Hypothesis; the seed driver does not
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    st = None

# ---------------------------------------------------------------------------------------
# feature weights (relative frequencies); 0 disables a feature
# ---------------------------------------------------------------------------------------
DEFAULT_WEIGHTS = {
    # top-level statements
    "assign": 6, "reassign": 2, "for": 5, "while": 2, "if": 2, "helper": 2, "slice_store": 1,
    "alias": 0,       # y = x; x += ...  (Python aliasing; srcdiff rebinds: known divergence)
    # loop-body statements
    "loop_local": 4, "acc_update": 5, "store": 5, "loop_if": 3, "exit": 2, "nested_for": 2,
    "loop_helper": 1, "loop_while": 1,
    # expressions
    "arith": 6, "div": 2, "unary": 5, "pow": 2, "maxmin": 2, "where": 1, "reduce": 3,
    "matmul": 2, "outer": 1, "transpose": 1, "reshape": 1, "ternary": 1, "arctan2": 1,
    "math": 1,
    "nn": 1,          # srcdiff.nn: relu, sigmoid, softmax, log_softmax, logsumexp, ...
    "logsoftmax": 1,  # written-out log-softmax (srcdiff fuses it into one gate)
    "globals": 1,     # module-level numeric constants (C0 = 0.5) used in the code
    "neg_index": 1,   # negative constant indices (x[-1])
    "swap": 1,        # tuple assignment swapping two accumulators in a loop
    "clip": 1,        # np.clip with constant bounds (either may be None)
    "spread": 1,      # np.var / .var() / np.linalg.norm among the reductions
    "max_stmts": 5,   # top-level statements (at most)
    "max_depth": 3,   # expression depth (at most)
    "local_index": 1,  # index/slice reads of local intermediate arrays (not only of arguments
    #                    and buffers)
}

LIMIT = 6.0        # operands of *, /, ** are squashed above this bound
EXP_LIMIT = 2.5    # arguments of exp / sinh / cosh are squashed above this bound

STRAIGHT_LINE_BREAKERS = {"for", "while", "store", "math", "copy", "alias", "nn"}


# ---------------------------------------------------------------------------------------
# choosers: where the random choices come from
# ---------------------------------------------------------------------------------------
class RandomChooser:
    """Choices from `random.Random(seed)`."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def integer(self, lo, hi):
        return self.rng.randint(lo, hi)

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, items):
        items = list(items)
        return items[self.rng.randrange(len(items))]

    def weighted(self, pairs):
        pairs = [(w, item) for w, item in pairs if w > 0]
        total = sum(w for w, _ in pairs)
        r = self.rng.random() * total
        for w, item in pairs:
            r -= w
            if r < 0:
                return item
        return pairs[-1][1]


class DrawChooser:
    """Choices drawn from Hypothesis (each shrinks towards the first / simplest option)."""

    def __init__(self, draw):
        self.draw = draw

    def integer(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def chance(self, p):
        # shrinks to 0, i.e. to False (the simpler program)
        return self.draw(st.integers(0, 999)) >= 1000 * (1.0 - p)

    def pick(self, items):
        items = list(items)
        return items[self.draw(st.integers(0, len(items) - 1))]

    def weighted(self, pairs):
        pairs = [(w, item) for w, item in pairs if w > 0]
        total = sum(w for w, _ in pairs)
        scale = 1000 / total
        bounds, acc = [], 0.0
        for w, _ in pairs:
            acc += w * scale
            bounds.append(acc)
        r = self.draw(st.integers(0, 999))
        for b, (_, item) in zip(bounds, pairs):
            if r < b:
                return item
        return pairs[-1][1]


# ---------------------------------------------------------------------------------------
# what the generator tracks
# ---------------------------------------------------------------------------------------
@dataclass
class E:
    """A generated expression: its code, concrete shape and a bound on its magnitude."""
    code: str
    shape: tuple
    bound: float
    lo: float = 0.0           # > 0: the value is known to be >= lo (positive by construction)
    view: tuple = ()          # names whose storage this expression may share (views)


@dataclass
class Var:
    name: str
    shape: tuple
    bound: float
    lo: float = 0.0
    written: bool = False     # a buffer / accumulator that is updated (do not alias it)
    owns: bool = False        # certainly holds storage nobody else sees (in-place `+=` is safe)


@dataclass
class Index:
    """An integer index expression whose value lies in [lo, hi]."""
    code: str
    lo: int
    hi: int

    def fits(self, length):
        return 0 <= self.lo and self.hi <= length - 1


@dataclass
class Scope:
    vars: list
    indices: list
    dims: dict                     # size -> code giving it (e.g. 3 -> "n")
    fn: str = "f"                  # function being generated (helpers have their own scope)
    K: int = 0                     # value of the int argument `K` (0: none)

    def child(self):
        return Scope(list(self.vars), list(self.indices), dict(self.dims), self.fn, self.K)


@dataclass
class Param:
    name: str
    kind: str                      # "array", "float" or "int"
    shape: tuple = ()
    low: float = -1.0
    high: float = 1.0
    value: int = 0                 # for "int"


@dataclass
class Program:
    source: str
    params: list
    wrt: tuple
    features: frozenset
    input_seed: int
    label: str = ""

    @property
    def straight_line(self):
        """No loops, in-place writes, math.* or copies: autograd can run the same source."""
        return not (self.features & STRAIGHT_LINE_BREAKERS)

    @property
    def module_name(self):
        return "fuzzprog_" + hashlib.sha1(self.source.encode()).hexdigest()[:16]

    def make_args(self, seed=None):
        """Fresh arguments (arrays drawn uniformly in each parameter's range)."""
        rng = np.random.default_rng(self.input_seed if seed is None else seed)
        args = []
        for p in self.params:
            if p.kind == "array":
                args.append(rng.uniform(p.low, p.high, size=p.shape))
            elif p.kind == "float":
                args.append(float(rng.uniform(p.low, p.high)))
            else:
                args.append(int(p.value))
        return args

    def autograd_source(self):
        return self.source.replace("import numpy as np", "import autograd.numpy as np", 1)

    def describe(self):
        head = ", ".join(f"{p.name}: {p.kind}{list(p.shape) if p.kind == 'array' else ''}"
                         f"{'=' + str(p.value) if p.kind == 'int' else ''}" for p in self.params)
        return (f"# {self.label} wrt={self.wrt} input_seed={self.input_seed} ({head})\n"
                f"{self.source}")


def broadcast(*shapes):
    nd = max(len(s) for s in shapes)
    out = []
    for k in range(nd):
        sizes = {s[len(s) - nd + k] for s in shapes if len(s) - nd + k >= 0} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def operand_shapes(shape):
    """Shapes that broadcast into `shape` (each a candidate operand)."""
    if shape == ():
        return [()]
    if len(shape) == 1:
        return [shape, ()] + ([(1,)] if shape[0] != 1 else [])
    a, b = shape
    out = [shape, (), (b,), (1, b), (a, 1)]
    return list(dict.fromkeys(out))


def fmt_const(c):
    return repr(float(c))


# ---------------------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------------------
def reduced_bound(fn, bound, count):
    """A bound on np.<fn> of `count` values bounded by `bound`."""
    if fn == "sum":
        return bound * count
    if fn == "var":
        return bound * bound
    if fn == "norm":
        return bound * math.sqrt(count)
    return bound


class Generator:
    def __init__(self, ch, weights=None):
        self.ch = ch
        self.w = dict(DEFAULT_WEIGHTS)
        if weights:
            self.w.update(weights)
        self.counter = 0
        self.features = set()
        self.helpers = []           # (name, [(param, shape, bound)], out E template, source)
        self.helper_sources = []
        self.helper_count = 0
        self.arg_names = set()
        self.globals = []
        self.uses_math = False
        self.contracting = {}       # name of an (n, n) matrix with entries at most 0.9 / n -> n

    # ---- small utilities ----------------------------------------------------------
    def fresh(self, base):
        self.counter += 1
        return f"{base}{self.counter}"

    def W(self, name):
        return self.w.get(name, 0)

    def const(self, lo=-2.0, hi=2.0):
        return self.ch.pick([0.5, 1.5, -0.7, 2.0, 0.3, -1.2, 0.9, 1.1, -0.4, 0.25, 0.0])

    def const_leaf(self):
        """A literal, or a module-level numeric constant (srcdiff reads globals as constants)."""
        if self.W("globals") and self.ch.chance(0.2):
            if not self.globals or (len(self.globals) < 3 and self.ch.chance(0.3)):
                name = f"C{len(self.globals)}"
                self.globals.append((name, self.ch.pick([0.0, 0.5, 1.5, -0.3, 2.0])))
            name, c = self.ch.pick(self.globals)
            self.features.add("globals")
            return E(name, (), abs(c), c if c > 0 else 0.0)
        c = self.const()
        return E(fmt_const(c), (), abs(c), c if c > 0 else 0.0)

    def dim_code(self, sc, size):
        return sc.dims.get(size, str(size))

    def shape_code(self, sc, shape):
        parts = [self.dim_code(sc, s) for s in shape]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def tame(self, e, limit=LIMIT):
        if e.bound <= limit:
            return e
        how = self.ch.pick(["tanh", "sin", "scale"])
        if how == "scale":
            k = limit / e.bound
            return E(f"({e.code} * {k:.3g})", e.shape, limit)
        return E(f"np.{how}({e.code})", e.shape, 1.0)

    # ---- expressions ----------------------------------------------------------------
    def expr(self, sc, shape, depth):
        """An expression of exactly `shape` (values bounded, in every function's domain)."""
        if depth <= 0 or self.ch.chance(0.35):
            return self.leaf(sc, shape, depth)
        options = [(self.W("arith"), "arith"), (self.W("div"), "div"), (self.W("unary"), "unary"),
                   (self.W("pow"), "pow"), (self.W("maxmin"), "maxmin"), (self.W("where"), "where"),
                   (self.W("reduce"), "reduce"), (self.W("matmul"), "matmul"),
                   (self.W("ternary"), "ternary"), (self.W("arctan2"), "arctan2"),
                   (1, "neg")]
        if len(shape) == 2:
            options += [(self.W("outer"), "outer"), (self.W("transpose"), "transpose"),
                        (self.W("reshape"), "reshape")]
        elif len(shape) == 1:
            options += [(self.W("reshape"), "reshape")]
        if shape == () and self.W("math"):
            options += [(self.W("math"), "math")]
        options += [(self.W("nn"), "nn"), (self.W("clip"), "clip")]
        if shape and self.W("logsoftmax"):
            options += [(self.W("logsoftmax"), "logsoftmax")]
        kind = self.ch.weighted(options)
        return getattr(self, "x_" + kind)(sc, shape, depth - 1)

    def sub(self, sc, shape, depth):
        return self.expr(sc, shape, depth)

    def x_neg(self, sc, shape, depth):
        a = self.sub(sc, shape, depth)
        return E(f"(-{a.code})", shape, a.bound)

    def x_arith(self, sc, shape, depth):
        sa, sb = self.pair_shapes(shape)
        op = self.ch.pick(["+", "-", "*", "+", "*"])
        a, b = self.sub(sc, sa, depth), self.sub(sc, sb, depth)
        if self.ch.chance(0.15):   # a constant operand
            b = E(fmt_const(self.const()), (), 2.0)
            if broadcast(a.shape, ()) != shape:
                a = self.sub(sc, shape, depth)
        if op == "*":
            a, b = self.tame(a), self.tame(b)
            return E(f"({a.code} * {b.code})", shape, a.bound * b.bound)
        return E(f"({a.code} {op} {b.code})", shape, a.bound + b.bound)

    def pair_shapes(self, shape):
        cands = operand_shapes(shape)
        while True:
            sa, sb = self.ch.pick(cands), self.ch.pick(cands)
            if broadcast(sa, sb) == shape:
                return sa, sb
            if self.ch.chance(0.5):
                return shape, sb

    def positive(self, sc, shape, depth):
        """An expression > 0 everywhere (with its lower bound)."""
        form = self.ch.pick(["sq", "sin", "exp", "tanh", "cosh", "var", "sq"])
        if form == "var":
            cands = [v for v in sc.vars if v.shape == shape and v.lo >= 0.2]
            if cands:
                v = self.ch.pick(cands)
                return E(v.name, shape, v.bound, v.lo, (v.name,))
            form = "sq"
        a = self.tame(self.sub(sc, shape, depth), 3.0)
        if form == "sq":
            c = self.ch.pick([1.0, 0.5, 2.0])
            return E(f"({fmt_const(c)} + {a.code} * {a.code})", shape, c + a.bound ** 2, c)
        if form == "sin":
            c = self.ch.pick([1.5, 2.0, 3.0])
            fn = self.ch.pick(["sin", "cos"])
            return E(f"({fmt_const(c)} + np.{fn}({a.code}))", shape, c + 1, c - 1)
        if form == "tanh":
            c = self.ch.pick([1.25, 2.0])
            return E(f"({fmt_const(c)} + np.tanh({a.code}))", shape, c + 1, c - 1)
        a = self.tame(a, 2.0)
        if form == "exp":
            return E(f"np.exp({a.code})", shape, math.exp(a.bound), math.exp(-a.bound))
        return E(f"np.cosh({a.code})", shape, math.cosh(a.bound), 1.0)

    def x_div(self, sc, shape, depth):
        sa, sb = self.pair_shapes(shape)
        a = self.tame(self.sub(sc, sa, depth))
        p = self.positive(sc, sb, depth)
        if p.lo < 0.3:
            p = E(f"(0.5 + {p.code})", p.shape, p.bound + 0.5, p.lo + 0.5)
        fn = self.ch.pick(["/", "/", "np.divide"])
        code = f"np.divide({a.code}, {p.code})" if fn == "np.divide" else f"({a.code} / {p.code})"
        return E(code, shape, a.bound / p.lo)

    def x_unary(self, sc, shape, depth):
        fn = self.ch.pick(["sin", "cos", "tanh", "exp", "log", "sqrt", "abs", "square", "arctan",
                           "sinh", "cosh", "log1p", "expm1", "absb", "sin", "tanh", "exp"])
        if fn in ("log", "sqrt", "log1p"):
            p = self.positive(sc, shape, depth)
            if fn == "log":
                if p.lo < 0.05:
                    p = E(f"(0.5 + {p.code})", shape, p.bound + 0.5, p.lo + 0.5)
                return E(f"np.log({p.code})", shape, max(abs(math.log(p.lo)), math.log(p.bound) + 1))
            if fn == "sqrt":
                return E(f"np.sqrt({p.code})", shape, math.sqrt(p.bound), math.sqrt(p.lo))
            return E(f"np.log1p({p.code})", shape, math.log1p(p.bound), math.log1p(p.lo))
        a = self.sub(sc, shape, depth)
        if fn in ("exp", "sinh", "cosh", "expm1"):
            a = self.tame(a, EXP_LIMIT)
            lo = math.exp(-a.bound) if fn == "exp" else (1.0 if fn == "cosh" else 0.0)
            return E(f"np.{fn}({a.code})", shape, math.cosh(a.bound) + math.exp(a.bound), lo)
        if fn == "square":
            a = self.tame(a)
            return E(f"np.square({a.code})", shape, a.bound ** 2)
        if fn == "abs":
            return E(f"np.abs({a.code})", shape, a.bound)
        if fn == "absb":
            return E(f"abs({a.code})", shape, a.bound)
        if fn == "arctan":
            return E(f"np.arctan({a.code})", shape, 1.6)
        return E(f"np.{fn}({a.code})", shape, 1.0)

    def x_math(self, sc, shape, depth):
        self.features.add("math")
        fn = self.ch.pick(["sin", "cos", "tanh", "exp", "sqrt", "log", "atan", "fabs"])
        if fn in ("sqrt", "log"):
            p = self.positive(sc, shape, depth)
            if p.lo < 0.1:
                p = E(f"(0.5 + {p.code})", shape, p.bound + 0.5, p.lo + 0.5)
            b = math.sqrt(p.bound) if fn == "sqrt" else max(abs(math.log(p.lo)), math.log(p.bound))
            return E(f"math.{fn}({p.code})", shape, b)
        a = self.sub(sc, shape, depth)
        if fn == "exp":
            a = self.tame(a, EXP_LIMIT)
            return E(f"math.exp({a.code})", shape, math.exp(a.bound), math.exp(-a.bound))
        return E(f"math.{fn}({a.code})", shape, a.bound if fn == "fabs" else 1.6)

    def x_pow(self, sc, shape, depth):
        form = self.ch.pick(["2", "3", "2.0", "0.5", "1.5", "-1.0", "-0.5", "np.power", "2",
                             "chain", "chain"])
        if form == "chain":   # `v * v * v`: one name multiplied by itself (the power rule)
            names = [v for v in sc.vars if v.shape == shape and v.bound <= 3.0]
            if names:
                v, k = self.ch.pick(names), self.ch.pick([3, 3, 4, 2])
                self.features.add("power")
                return E("(" + " * ".join([v.name] * k) + ")", shape, v.bound ** k)
            form = "3"
        if form in ("2", "3", "2.0"):
            a = self.tame(self.sub(sc, shape, depth), 2.5)
            k = float(form) if "." in form else int(form)
            return E(f"({a.code} ** {form})", shape, a.bound ** k)
        p = self.positive(sc, shape, depth)
        if p.lo < 0.2:
            p = E(f"(0.5 + {p.code})", shape, p.bound + 0.5, p.lo + 0.5)
        p = p if p.bound < 10 else E(f"(1.0 + np.tanh({p.code}))", shape, 2.0, 1.0 + math.tanh(p.lo))
        if form == "np.power":
            e = self.ch.pick([1.5, 0.5, 2.0])
            return E(f"np.power({p.code}, {e})", shape, p.bound ** e, p.lo ** e)
        e = float(form)
        bound = p.bound ** e if e > 0 else p.lo ** e
        return E(f"({p.code} ** {form})", shape, bound, (p.lo ** e if e > 0 else p.bound ** e))

    def x_maxmin(self, sc, shape, depth):
        sa, sb = self.pair_shapes(shape)
        a = self.sub(sc, sa, depth)
        if self.ch.chance(0.3):
            b = E(fmt_const(self.ch.pick([0.0, 0.2, -0.3])), (), 0.3)
            if broadcast(a.shape, ()) != shape:
                a = self.sub(sc, shape, depth)
        else:
            b = self.sub(sc, sb, depth)
        fn = self.ch.pick(["maximum", "minimum"])
        if shape == () and b.shape == () and a.shape == () and self.ch.chance(0.5):
            return E(f"{fn[:3]}({a.code}, {b.code})", shape, max(a.bound, b.bound))
        return E(f"np.{fn}({a.code}, {b.code})", shape, max(a.bound, b.bound))

    def condition(self, sc, shape, depth):
        """A comparison (elementwise when `shape` is an array shape)."""
        sa, sb = self.pair_shapes(shape)
        a = self.sub(sc, sa, max(depth - 1, 0))
        if self.ch.chance(0.4):
            b = E(fmt_const(self.ch.pick([0.0, 0.3, -0.2, 0.5])), (), 0.5)
            if broadcast(a.shape, ()) != shape:
                a = self.sub(sc, shape, max(depth - 1, 0))
        else:
            b = self.sub(sc, sb, max(depth - 1, 0))
        op = self.ch.pick([">", "<", ">=", "<="])
        return f"({a.code} {op} {b.code})"

    def scalar_condition(self, sc, depth):
        c = self.condition(sc, (), depth)
        r = self.ch.integer(0, 9)
        if r == 0:
            c = f"(not {c})"
        elif r == 1:
            c = f"({c} and {self.condition(sc, (), depth)})"
        elif r == 2:
            c = f"({c} or {self.condition(sc, (), depth)})"
        return c

    def x_where(self, sc, shape, depth):
        cands = operand_shapes(shape)
        sc_shape = self.ch.pick(cands)
        sa, sb = self.ch.pick(cands), self.ch.pick(cands)
        if broadcast(sc_shape, sa, sb) != shape:
            sa = shape
        cond = self.condition(sc, sc_shape, depth)
        a, b = self.sub(sc, sa, depth), self.sub(sc, sb, depth)
        if shape == ():
            # np.where of scalars is a mutable 0-d array: `acc = w; acc += 1` would then
            # change w too. `* 1.0` makes it a NumPy scalar (a value, as srcdiff sees it)
            return E(f"(np.where({cond}, {a.code}, {b.code}) * 1.0)", shape, max(a.bound, b.bound))
        return E(f"np.where({cond}, {a.code}, {b.code})", shape, max(a.bound, b.bound))

    def x_ternary(self, sc, shape, depth):
        cond = self.scalar_condition(sc, depth)
        a, b = self.sub(sc, shape, depth), self.sub(sc, shape, depth)
        return E(f"({a.code} if {cond} else {b.code})", shape, max(a.bound, b.bound),
                 view=a.view + b.view)

    def x_arctan2(self, sc, shape, depth):
        # the second argument is kept positive: arctan2 has a kink at the origin, which
        # zero-filled buffers would otherwise hit exactly
        sa, sb = self.pair_shapes(shape)
        a, b = self.sub(sc, sa, depth), self.positive(sc, sb, depth)
        if self.ch.chance(0.5):
            a, b = b, a     # arctan2(p, a) = pi/2 - arctan(a/p) near the positive y axis
        return E(f"np.arctan2({a.code}, {b.code})", shape, 3.2)

    def dims_available(self, sc):
        sizes = sorted(set(sc.dims) | {s for v in sc.vars for s in v.shape if s > 1})
        return sizes or [3]

    def x_nn(self, sc, shape, depth):
        """srcdiff.nn helpers (fused gradient rules)."""
        self.features.add("nn")
        forms = ["relu", "sigmoid"]
        if shape:
            forms += ["softmax", "log_softmax"]
        if shape == ():
            forms += ["logsumexp_all", "sce"]
        elif len(shape) == 1 or 1 in shape:
            forms += ["logsumexp"]
        form = self.ch.pick(forms)
        if form in ("relu", "sigmoid"):
            a = self.sub(sc, shape, depth)
            return E(f"nn.{form}({a.code})", shape, a.bound if form == "relu" else 1.0)
        if form in ("softmax", "log_softmax"):
            a = self.tame(self.sub(sc, shape, depth), 5.0)
            axis = self.ch.pick([None] + [k for k in range(-len(shape), len(shape))
                                          if shape[k] > 1])
            kw = "" if axis is None else (f", axis={axis}" if self.ch.chance(0.7) else f", {axis}")
            if axis is None and self.ch.chance(0.5):
                kw = f", axis={len(shape) - 1}"
            bound = 1.0 if form == "softmax" else 5.0 + 2 * a.bound + math.log(max(np.prod(shape), 1))
            return E(f"nn.{form}({a.code}{kw})", shape, bound)
        if form == "logsumexp_all":
            src = self.any_array_shape(sc)
            a = self.tame(self.sub(sc, src, depth), 5.0)
            return E(f"nn.logsumexp({a.code})", (), a.bound + math.log(np.prod(src)))
        if form == "sce":
            src = self.any_array_shape(sc)
            z = self.tame(self.sub(sc, src, depth), 5.0)
            y = self.tame(self.sub(sc, src, depth), 1.0)
            return E(f"nn.softmax_cross_entropy({z.code}, {y.code})", (),
                     np.prod(src) * (2 * z.bound + 2))
        # logsumexp over one axis, as a reduction to `shape`
        if len(shape) == 1:
            d = self.ch.pick(self.dims_available(sc))
            axis = self.ch.pick([0, 1])
            src = (d, shape[0]) if axis == 0 else (shape[0], d)
            keep = ""
        else:
            axis = self.ch.pick([k for k in range(2) if shape[k] == 1])
            d = self.ch.pick(self.dims_available(sc))
            src = tuple(d if k == axis else shape[k] for k in range(2))
            keep = ", keepdims=True"
        a = self.tame(self.sub(sc, src, depth), 5.0)
        return E(f"nn.logsumexp({a.code}, axis={axis}{keep})", shape, a.bound + math.log(d) + 1)

    def x_logsoftmax(self, sc, shape, depth):
        """`z - np.log(np.sum(np.exp(z), axis, keepdims=True))` of a variable z (srcdiff fuses it)."""
        self.features.add("logsoftmax")
        cands = [v for v in sc.vars if v.shape == shape and v.bound <= 5.0]
        # over an axis of length 1 the result is (almost) exactly 0: comparisons with it
        # would tie, and srcdiff's fused form is exact where the written-out one is not
        axes = [k for k in range(len(shape)) if shape[k] > 1]
        if not cands or not axes:
            return self.x_unary(sc, shape, depth)
        z = self.ch.pick(cands).name
        axis = self.ch.pick(axes)
        if axis == len(shape) - 1 and self.ch.chance(0.3):
            axis = -1
        return E(f"({z} - np.log(np.sum(np.exp({z}), axis={axis}, keepdims=True)))", shape,
                 12.0)

    def stmt_logsoftmax(self, sc, out, indent, depth):
        """The stabilised form over two statements: shift by the max, then log-softmax."""
        shape = self.ch.pick([v.shape for v in sc.vars if len(v.shape) == 2 and max(v.shape) > 1]
                             or [(3, 2)])
        z0 = self.tame(self.expr(sc, shape, depth), 5.0)
        axis = self.ch.pick([k for k in (0, 1) if shape[k] > 1])
        if axis == 1 and self.ch.chance(0.3):
            axis = -1
        z, lp = self.fresh("z"), self.fresh("v")
        out.append(f"{indent}{z} = {z0.code}")
        out.append(f"{indent}{z} = {z} - np.max({z}, axis={axis}, keepdims=True)")
        out.append(f"{indent}{lp} = {z} - np.log(np.sum(np.exp({z}), axis={axis}, keepdims=True))")
        sc.vars.append(Var(z, shape, 2 * z0.bound))
        sc.vars.append(Var(lp, shape, 15.0))
        self.features.add("logsoftmax")

    def x_clip(self, sc, shape, depth):
        a = self.sub(sc, shape, depth)
        lo, hi = sorted(self.ch.pick([(-0.5, 0.5), (-1.0, 0.3), (0.0, 1.2)]))
        lo_code, hi_code = fmt_const(lo), fmt_const(hi)
        if self.ch.chance(0.2):
            lo_code = "None"
        elif self.ch.chance(0.2):
            hi_code = "None"
        self.features.add("clip")
        bound = max(abs(lo), abs(hi)) if hi_code != "None" and lo_code != "None" else a.bound
        return E(f"np.clip({a.code}, {lo_code}, {hi_code})", shape, bound)

    def x_reduce(self, sc, shape, depth):
        fn = self.ch.pick(["sum", "mean", "max", "min", "sum", "mean"])
        if self.W("spread") and self.ch.chance(0.15):
            fn = self.ch.pick(["var", "norm"])
            self.features.add(fn)
        method = self.ch.chance(0.25) and fn != "norm"
        if shape == ():
            src_shape = self.any_array_shape(sc)
            x = self.sub(sc, src_shape, depth)
            count = int(np.prod(src_shape))
            bound = reduced_bound(fn, x.bound, count)
            if fn == "norm":   # + 1.5: never the zero vector, where the norm has no gradient
                return E(f"np.linalg.norm({x.code} + 1.5)", shape, bound + 1.5 * count)
            code = f"{x.code}.{fn}()" if method and x.code.isidentifier() else f"np.{fn}({x.code})"
            return E(code, shape, bound)
        # choose which axis of the source is reduced
        if len(shape) == 1:
            d = self.ch.pick(self.dims_available(sc) + [1])
            axis = self.ch.pick([0, 1])
            src_shape = (d, shape[0]) if axis == 0 else (shape[0], d)
            keep = False
        else:
            ones = [k for k in range(2) if shape[k] == 1]
            if not ones:
                return self.x_arith(sc, shape, depth)
            axis = self.ch.pick(ones)
            d = self.ch.pick(self.dims_available(sc))
            src_shape = tuple(d if k == axis else shape[k] for k in range(2))
            keep = True
        x = self.sub(sc, src_shape, depth)
        count = src_shape[axis]
        bound = reduced_bound(fn, x.bound, count)
        ax = self.ch.pick([str(axis), str(axis - 2)]) if self.ch.chance(0.3) else str(axis)
        kw = f"axis={ax}" if self.ch.chance(0.7) or fn == "norm" else ax
        if keep:
            kw += ", keepdims=True"
        elif self.ch.chance(0.15):
            kw += ", keepdims=False"
        if fn == "norm":
            return E(f"np.linalg.norm({x.code} + 1.5, {kw})", shape, bound + 1.5 * count)
        if method and x.code.isidentifier():
            return E(f"{x.code}.{fn}({kw})", shape, bound)
        return E(f"np.{fn}({x.code}, {kw})", shape, bound)

    def any_array_shape(self, sc):
        existing = [v.shape for v in sc.vars if v.shape]
        if existing and self.ch.chance(0.7):
            return self.ch.pick(existing)
        dims = self.dims_available(sc)
        a, b = self.ch.pick(dims), self.ch.pick(dims)
        return self.ch.pick([(a,), (a, b), (1, b), (a, 1), (a,), (a, b)])

    def x_matmul(self, sc, shape, depth):
        k = self.ch.pick(self.dims_available(sc))
        if len(shape) == 0:
            sa, sb = (k,), (k,)
        elif len(shape) == 1:
            sa, sb = self.ch.pick([((shape[0], k), (k,)), ((k,), (k, shape[0]))])
        else:
            sa, sb = (shape[0], k), (k, shape[1])
        a = self.tame(self.sub(sc, sa, depth), 3.0)
        b = self.tame(self.sub(sc, sb, depth), 3.0)
        form = self.ch.pick(["@", "@", "np.dot", "np.matmul"])
        code = f"({a.code} @ {b.code})" if form == "@" else f"{form}({a.code}, {b.code})"
        return E(code, shape, a.bound * b.bound * k)

    def x_outer(self, sc, shape, depth):
        a = self.tame(self.sub(sc, (shape[0],), depth))
        b = self.tame(self.sub(sc, (shape[1],), depth))
        return E(f"np.outer({a.code}, {b.code})", shape, a.bound * b.bound)

    def x_transpose(self, sc, shape, depth):
        a = self.sub(sc, (shape[1], shape[0]), depth)
        code = f"{a.code}.T" if a.code.isidentifier() and self.ch.chance(0.7) else \
            f"np.transpose({a.code})"
        return E(code, shape, a.bound, a.lo, a.view)

    def x_reshape(self, sc, shape, depth):
        if len(shape) == 1:
            src = self.ch.pick([(shape[0], 1), (1, shape[0])])
        elif shape[1] == 1:
            src = (shape[0],)
        elif shape[0] == 1:
            src = (shape[1],)
        else:
            src = (shape[1], shape[0])
        a = self.sub(sc, src, depth)
        target = self.shape_code(sc, shape)
        code = f"{a.code}.reshape({target})" if a.code.isidentifier() and self.ch.chance(0.7) else \
            f"np.reshape({a.code}, {target})"
        return E(code, shape, a.bound, a.lo, a.view)

    # ---- leaves -------------------------------------------------------------------
    def leaf(self, sc, shape, depth):
        same = [v for v in sc.vars if v.shape == shape]
        options = []
        if same:
            options.append((6, "var"))
        if shape == ():
            options += [(2, "const"), (5, "index"), (1, "reduce_leaf")]
        else:
            options += [(2, "slice")]
            if not same:
                options += [(3, "combine"), (2, "derive")]
        kind = self.ch.weighted(options)
        if kind == "combine":
            e = self.combine(sc, shape)
            if e is not None:
                return e
            kind = "derive"
        if kind == "var":
            v = self.ch.pick(same)
            return E(v.name, shape, v.bound, v.lo, (v.name,))
        if kind == "const":
            return self.const_leaf()
        if kind == "index":
            e = self.index_read(sc)
            if e is not None:
                return e
            return E(fmt_const(self.const()), (), 2.0)
        if kind == "reduce_leaf":
            arrays = [v for v in sc.vars if v.shape]
            if arrays:
                v = self.ch.pick(arrays)
                fn = self.ch.pick(["sum", "mean", "max", "min"])
                n = int(np.prod(v.shape))
                return E(f"np.{fn}({v.name})", (), v.bound * (n if fn == "sum" else 1))
            return E(fmt_const(self.const()), (), 2.0)
        if kind == "slice":
            e = self.slice_read(sc, shape)
            if e is not None:
                return e
        return self.derive(sc, shape, depth)

    def combine(self, sc, shape):
        """`u op w` of existing variables whose shapes broadcast to exactly `shape`."""
        cands = [v for v in sc.vars if v.shape and broadcast(v.shape, shape) == shape]
        if not cands:
            return None
        u = self.ch.pick(cands)
        need = [v for v in sc.vars if broadcast(u.shape, v.shape) == shape]
        if not need:
            return None
        w = self.ch.pick(need)
        op = self.ch.pick(["+", "*", "-"])
        ue, we = self.tame(E(u.name, u.shape, u.bound)), self.tame(E(w.name, w.shape, w.bound))
        bound = ue.bound * we.bound if op == "*" else ue.bound + we.bound
        return E(f"({ue.code} {op} {we.code})", shape, bound)

    def index_for(self, sc, length):
        """Code of an index valid for an axis of `length` (a loop index when one fits)."""
        fits = [ix for ix in sc.indices if ix.fits(length)]
        shifted = [Index(f"({ix.code} - 1)", ix.lo - 1, ix.hi - 1) for ix in sc.indices
                   if ix.lo >= 1 and ix.hi - 1 <= length - 1]
        if (fits or shifted) and self.ch.chance(0.8):
            return self.ch.pick(fits + shifted).code
        k = self.ch.integer(0, length - 1)
        if self.W("neg_index") and self.ch.chance(0.2):
            k -= length      # negative index
        return str(k)

    def indexable(self, sc):
        """Arrays that index and slice reads may use."""
        if self.W("local_index"):
            return [v for v in sc.vars if v.shape]
        return [v for v in sc.vars if v.shape and (v.written or v.name in self.arg_names)]

    def index_read(self, sc):
        arrays = self.indexable(sc)
        if not arrays:
            return None
        v = self.ch.pick(arrays)
        parts = [self.index_for(sc, s) for s in v.shape]
        return E(f"{v.name}[{', '.join(parts)}]", (), v.bound, v.lo)

    def slice_read(self, sc, shape):
        """A (view) read of an existing array that has exactly `shape`."""
        opts = []
        for v in self.indexable(sc):
            if len(v.shape) == 2 and len(shape) == 1:
                a, b = v.shape
                if b == shape[0]:
                    opts.append((v, "row"))
                if a == shape[0]:
                    opts.append((v, "col"))
            if len(v.shape) == 1 and len(shape) == 1 and v.shape[0] > shape[0]:
                opts.append((v, "sub1"))
            if len(v.shape) == 1 and len(shape) == 1 and v.shape[0] == shape[0]:
                opts.append((v, "full1"))
            if len(v.shape) == 2 and len(shape) == 2:
                a, b = v.shape
                if shape[0] == 1 and b == shape[1]:
                    opts.append((v, "row2"))
                if shape[1] == 1 and a == shape[0]:
                    opts.append((v, "col2"))
                if (a, b) == shape:
                    opts.append((v, "rev2"))
        if not opts:
            return None
        v, kind = self.ch.pick(opts)
        a = v.shape[0]
        if kind == "row":
            code = f"{v.name}[{self.index_for(sc, a)}]" if self.ch.chance(0.5) else \
                f"{v.name}[{self.index_for(sc, a)}, :]"
        elif kind == "col":
            code = f"{v.name}[:, {self.index_for(sc, v.shape[1])}]"
        elif kind == "sub1":
            L, N = shape[0], v.shape[0]
            if N == 2 * L - 1 or N == 2 * L:
                if self.ch.chance(0.4):
                    code = f"{v.name}[::2]" if N == 2 * L - 1 or self.ch.chance(0.5) else f"{v.name}[1::2]"
                    return E(code, shape, v.bound, v.lo, (v.name,))
            start = self.ch.integer(0, N - L)
            form = self.ch.integer(0, 2)
            if form == 0 and start == 0:
                code = f"{v.name}[:{L}]"
            elif form == 1 and start + L == N:
                code = f"{v.name}[{start}:]"
            elif form == 1 and start == 0 and N - L >= 1:
                code = f"{v.name}[:-{N - L}]"
            else:
                code = f"{v.name}[{start}:{start + L}]"
        elif kind == "full1":
            code = self.ch.pick([f"{v.name}[:]", f"{v.name}[::-1]", f"{v.name}[0:]"])
        elif kind == "row2":
            r = self.ch.integer(0, a - 1)
            code = f"{v.name}[{r}:{r + 1}]" if self.ch.chance(0.6) else f"{v.name}[{r}:{r + 1}, :]"
        elif kind == "col2":
            c = self.ch.integer(0, v.shape[1] - 1)
            code = f"{v.name}[:, {c}:{c + 1}]"
        else:
            code = self.ch.pick([f"{v.name}[:, ::-1]", f"{v.name}[::-1]", f"{v.name}[:, :]"])
        return E(code, shape, v.bound, v.lo, (v.name,))

    def derive(self, sc, shape, depth):
        """Any expression of `shape` built from what exists (always succeeds)."""
        if len(shape) == 1:
            opts = ["reduce", "scalar_fill", "matmul", "reshape"]
        elif len(shape) == 2 and 1 in shape:
            opts = ["reduce", "reshape", "scalar_fill"]
        else:
            opts = ["transpose", "outer", "bcast", "scalar_fill", "matmul"]
        kind = self.ch.pick(opts)
        d = max(depth, 1)
        if kind == "scalar_fill" or d > 6:
            s = self.leaf(sc, (), 0)
            return E(f"({s.code} * np.ones({self.shape_code(sc, shape)}))", shape, s.bound)
        if kind == "bcast":
            col = self.tame(self.leaf(sc, (shape[0], 1), d))
            row = self.tame(self.leaf(sc, (shape[1],), d))
            op = self.ch.pick(["+", "*", "-"])
            bound = col.bound * row.bound if op == "*" else col.bound + row.bound
            return E(f"({col.code} {op} {row.code})", shape, bound)
        if kind in ("reduce", "matmul", "transpose", "outer", "reshape"):
            # derived forms recurse with a small budget; deep recursion falls back to a fill
            self._derive_depth = getattr(self, "_derive_depth", 0) + 1
            try:
                if self._derive_depth > 3:
                    s = self.leaf(sc, (), 0)
                    return E(f"({s.code} * np.ones({self.shape_code(sc, shape)}))", shape, s.bound)
                return getattr(self, "x_" + kind)(sc, shape, 0)
            finally:
                self._derive_depth -= 1
        raise AssertionError(kind)

    # ---- statements -------------------------------------------------------------------
    def stmt_assign(self, sc, out, indent, depth):
        shape = self.pick_shape(sc)
        e = self.expr(sc, shape, depth)
        name = self.fresh("v")
        code = self.bound_code(sc, e)
        out.append(f"{indent}{name} = {code}")
        sc.vars.append(Var(name, shape, e.bound, e.lo, owns=code != e.code or not e.view))

    def bound_code(self, sc, e):
        """The code binding `e` to a new name; what it views loses `owns` (it has an alias)."""
        code = self.copy_if_view(sc, e)
        if e.view and code == e.code:
            for v in sc.vars:
                if v.name in e.view:
                    v.owns = False
        return code

    def copy_if_view(self, sc, e):
        """Bind fresh storage when `e` is a view of something that is written later."""
        written = {v.name for v in sc.vars if v.written}
        if e.shape and set(e.view) & written:
            self.features.add("copy")
            if e.code.isidentifier() and self.ch.chance(0.5):
                return f"{e.code}.copy()"
            return f"np.copy({e.code})"
        return e.code

    def pick_shape(self, sc):
        existing = [v.shape for v in sc.vars if v.shape != ()]
        if existing and self.ch.chance(0.5):
            return self.ch.pick(existing)
        if self.ch.chance(0.3):
            return ()
        return self.any_array_shape(sc)

    def stmt_reassign(self, sc, out, indent, depth):
        """`v = f(v, ...)` (the same user name assigned again: SSA renaming)."""
        cands = [v for v in sc.vars if not v.written and v.name.startswith("v")]
        if not cands:
            return self.stmt_assign(sc, out, indent, depth)
        v = self.ch.pick(cands)
        e = self.expr(sc, v.shape, depth)
        form = self.ch.integer(0, 3)
        old = E(v.name, v.shape, v.bound)
        old = self.tame(old)
        if form == 0:
            out.append(f"{indent}{v.name} = {self.tame(e).code} * {old.code}")
            v.bound = self.tame(e).bound * old.bound
        elif form == 1 and broadcast(e.shape, v.shape) == v.shape and (v.owns or not v.shape):
            op = self.ch.pick(["+=", "-="])
            # a name (not an element): the array is rebound in srcdiff and, since v holds
            # fresh storage nobody else sees, Python's in-place update agrees
            out.append(f"{indent}{v.name} {op} {e.code}")
            v.bound += e.bound
        else:
            out.append(f"{indent}{v.name} = np.tanh({v.name}) + {e.code}")
            v.bound = 1.0 + e.bound
        v.lo = 0.0

    def stmt_alias(self, sc, out, indent, depth):
        """Two names for one array, then one of them updated without the other seeing it:
        `y = x; x = x + e`, or `y = x.copy(); x += e`. (`y = x; x += e` changes `y` too in
        NumPy: srcdiff rejects reading `y` afterwards, see tests/test_errors.py.)"""
        shape = self.any_array_shape(sc)
        e = self.expr(sc, shape, depth)
        a, b = self.fresh("v"), self.fresh("v")
        out.append(f"{indent}{a} = {e.code} * 1.0")
        e2 = self.expr(sc, shape, depth)
        if self.ch.chance(0.5):
            out.append(f"{indent}{b} = {a}")
            out.append(f"{indent}{a} = {a} + {e2.code}")
        else:
            out.append(f"{indent}{b} = {a}.copy()")
            out.append(f"{indent}{a} += {e2.code}")
        sc.vars.append(Var(b, shape, e.bound + e2.bound))
        self.features.add("alias")

    def stmt_if(self, sc, out, indent, depth):
        """if/elif/else at the top level, defining the same variables in every branch."""
        shape = self.pick_shape(sc)
        name = self.fresh("v")
        branches = self.ch.integer(2, 3)
        bound = 0.0
        accs = [v for v in sc.vars if v.written and v.shape == () and v.name.startswith("acc")]
        for b in range(branches):
            if b == 0:
                out.append(f"{indent}if {self.scalar_condition(sc, depth)}:")
            elif b == branches - 1:
                out.append(f"{indent}else:")
            else:
                out.append(f"{indent}elif {self.scalar_condition(sc, depth)}:")
            inner = sc.child()
            if self.ch.chance(0.3):
                self.stmt_assign(inner, out, indent + "    ", depth)
            e = self.expr(inner, shape, depth)
            out.append(f"{indent}    {name} = {self.bound_code(inner, e)}")
            bound = max(bound, e.bound)
            if accs and self.ch.chance(0.3):
                acc = self.ch.pick(accs)
                e2 = self.expr(inner, (), depth)
                out.append(f"{indent}    {acc.name} += {e2.code}")
                acc.bound += e2.bound
        sc.vars.append(Var(name, shape, bound))
        self.features.add("if")

    def stmt_slice_store(self, sc, out, indent, depth):
        """A buffer filled by slice writes outside loops."""
        L = self.ch.pick(self.dims_available(sc))
        buf = self.fresh("buf")
        out.append(f"{indent}{buf} = np.zeros({self.dim_code(sc, L)})")
        bv = Var(buf, (L,), 0.0, written=True)
        sc.vars.append(bv)
        for _ in range(self.ch.integer(1, 3)):
            a = self.ch.integer(0, L - 1)
            b = self.ch.integer(a + 1, L)
            e = self.tame(self.expr(sc, (b - a,) if b - a > 1 or self.ch.chance(0.5) else (), depth))
            op = self.ch.pick(["=", "+=", "-="])
            lhs = f"{buf}[{a}:{b}]" if b - a > 1 or e.shape else f"{buf}[{a}]"
            if e.shape == () and b - a == 1 and self.ch.chance(0.5):
                lhs = f"{buf}[{a}]"
            out.append(f"{indent}{lhs} {op} {e.code}")
            bv.bound += e.bound
        self.features.add("store")

    # ---- loops ------------------------------------------------------------------------
    def make_accumulators(self, sc, out, indent, depth):
        accs = []
        for _ in range(self.ch.integer(1, 2)):
            name = self.fresh("acc")
            if self.ch.chance(0.7):
                if self.ch.chance(0.6):
                    out.append(f"{indent}{name} = 0.0")
                    accs.append(Var(name, (), 0.0, written=True))
                else:
                    e = self.tame(self.expr(sc, (), max(depth - 1, 0)))
                    out.append(f"{indent}{name} = {e.code}")
                    accs.append(Var(name, (), e.bound, written=True))
            else:
                shape = self.ch.pick([v.shape for v in sc.vars if v.shape] or [(3,)])
                out.append(f"{indent}{name} = np.zeros({self.shape_code(sc, shape)})")
                accs.append(Var(name, shape, 0.0, written=True))
        return accs

    def make_buffers(self, sc, out, indent, depth):
        bufs = []
        for _ in range(self.ch.integer(0, 2)):
            name = self.fresh("buf")
            arrays = [v for v in sc.vars if v.shape and not v.written]
            form = self.ch.integer(0, 4)
            if form <= 1 or not arrays:
                shape = self.any_array_shape(sc) if form == 0 else self.ch.pick(
                    [(self.ch.pick(self.dims_available(sc)),)])
                fn = self.ch.pick(["zeros", "zeros", "ones"])
                out.append(f"{indent}{name} = np.{fn}({self.shape_code(sc, shape)})")
                bufs.append(Var(name, shape, 1.0, written=True))
            elif form == 2:
                v = self.ch.pick(arrays)
                fn = self.ch.pick(["zeros_like", "ones_like"])
                out.append(f"{indent}{name} = np.{fn}({v.name})")
                bufs.append(Var(name, v.shape, 1.0, written=True))
            else:
                v = self.ch.pick(arrays)
                code = self.ch.pick([f"{v.name}.copy()", f"np.copy({v.name})"])
                out.append(f"{indent}{name} = {code}")
                bufs.append(Var(name, v.shape, v.bound, written=True))
                self.features.add("copy")
        return bufs

    def range_header(self, sc, index, outer):
        """(range code, Index) for a loop over an axis; `outer` is an enclosing Index or None."""
        L = self.ch.pick(self.dims_available(sc))
        dc = self.dim_code(sc, L)
        forms = ["plain", "start1", "reverse", "step2", "rstep2", "plain"]
        if sc.K and sc.K <= L:
            forms.append("K")
        if outer is not None and outer.hi <= L - 1 and outer.lo >= 0:
            forms += ["tri", "lower", "upto", "tri"]
        form = self.ch.pick(forms)
        if form == "plain":
            return f"range({dc})", Index(index, 0, L - 1)
        if form == "start1":
            return f"range(1, {dc})", Index(index, 1, L - 1)
        if form == "reverse":
            return f"range({dc} - 1, -1, -1)", Index(index, 0, L - 1)
        if form == "step2":
            return f"range(0, {dc}, 2)", Index(index, 0, L - 1)
        if form == "rstep2":
            return f"range({dc} - 1, 0, -2)", Index(index, 1, L - 1)
        if form == "K":
            return "range(K)", Index(index, 0, sc.K - 1)
        if form == "tri":
            return f"range({outer.code} + 1, {dc})", Index(index, outer.lo + 1, L - 1)
        if form == "lower":
            return f"range({outer.code})", Index(index, 0, max(outer.hi - 1, 0))
        return f"range(0, {outer.code} + 1)", Index(index, 0, outer.hi)

    def stmt_for(self, sc, out, indent, depth):
        accs = self.make_accumulators(sc, out, indent, depth)
        bufs = self.make_buffers(sc, out, indent, depth)
        sc.vars.extend(bufs)
        sc.vars.extend(accs)
        vectors = [a for a in accs if len(a.shape) == 1]
        if vectors and self.ch.chance(0.5):
            # a named matrix the loop may multiply its state by (see `acc_update`)
            n = self.ch.pick(vectors).shape[0]
            name = self.fresh("w")
            m = self.tame(self.sub(sc, (n, n), max(depth - 1, 0)), 1.0)
            out.append(f"{indent}{name} = {0.9 / n!r} * np.tanh({m.code})")
            sc.vars.append(Var(name, (n, n), 0.9 / n))
            self.contracting[name] = n
        self.loop(sc, out, indent, depth, accs, bufs, outer=None, trips=1)
        self.features.add("for")

    @staticmethod
    def inflate(sc):
        """Inside a loop, updated values feed back into their own updates: assume they are large
        (so exp/cosh/products of them get squashed) and grow them only additively."""
        for v in sc.vars:
            if v.written:
                v.bound = max(v.bound, 50.0)

    def loop(self, sc, out, indent, depth, accs, bufs, outer, trips):
        self.inflate(sc)
        index = self.fresh("i")
        header, ix = self.range_header(sc, index, outer)
        L = ix.hi + 1
        out.append(f"{indent}for {index} in {header}:")
        inner = sc.child()
        inner.indices.append(ix)
        self.loop_body(inner, out, indent + "    ", depth, accs, bufs, trips * L,
                       can_exit=True, loop_depth=1 if outer is None else 2)

    def stmt_while(self, sc, out, indent, depth, accs=None, bufs=None, trips=1, loop_depth=1):
        top = accs is None
        if top:
            accs = self.make_accumulators(sc, out, indent, depth)
            bufs = self.make_buffers(sc, out, indent, depth)
            sc.vars.extend(bufs)
            sc.vars.extend(accs)
        self.inflate(sc)
        L = self.ch.pick(self.dims_available(sc))
        c = self.fresh("c")
        out.append(f"{indent}{c} = 0")
        test = f"{c} < {self.dim_code(sc, L)}"
        scalar_accs = [a for a in accs if a.shape == ()]
        if scalar_accs and self.ch.chance(0.4):
            a = self.ch.pick(scalar_accs)
            thr = self.ch.pick([1.0, 2.0, 0.5, -0.5])
            test = self.ch.pick([f"{test} and {a.name} < {thr}", f"{a.name} < {thr} and {test}"])
        out.append(f"{indent}while {test}:")
        inner = sc.child()
        first = self.ch.chance(0.5)
        if first:   # increment first: `continue` is then safe
            out.append(f"{indent}    {c} += 1")
            inner.indices.append(Index(f"({c} - 1)", 0, L - 1))
            body = []
            self.loop_body(inner, body, indent + "    ", depth, accs, bufs, trips * L,
                           can_exit=True, loop_depth=loop_depth)
            out.extend(body)
        else:
            inner.indices.append(Index(c, 0, L - 1))
            body = []
            self.loop_body(inner, body, indent + "    ", depth, accs, bufs, trips * L,
                           can_exit="break", loop_depth=loop_depth)
            out.extend(body)
            out.append(f"{indent}    {c} = {c} + 1")
        self.features.add("while")

    def loop_body(self, sc, out, indent, depth, accs, bufs, trips, can_exit, loop_depth):
        n_stmts = self.ch.integer(1, 4)
        did_something = False
        for k in range(n_stmts):
            options = [(self.W("loop_local"), "local"), (self.W("acc_update"), "acc"),
                       (self.W("store") if bufs else 0, "store"), (self.W("loop_if"), "if"),
                       (self.W("exit") if can_exit else 0, "exit"),
                       (self.W("nested_for") if loop_depth < 2 else 0, "nested"),
                       (self.W("loop_helper"), "helper"),
                       (self.W("loop_while") if loop_depth < 2 else 0, "while")]
            kind = self.ch.weighted(options)
            if kind == "local":
                self.loop_local(sc, out, indent, depth)
            elif kind == "acc":
                self.acc_update(sc, out, indent, depth, accs, trips)
                did_something = True
            elif kind == "store":
                self.buffer_store(sc, out, indent, depth, bufs, trips)
                did_something = True
            elif kind == "if":
                self.loop_if(sc, out, indent, depth, accs, bufs, trips, can_exit)
                did_something = True
            elif kind == "exit":
                word = "break" if can_exit == "break" else self.ch.pick(["break", "continue"])
                out.append(f"{indent}if {self.scalar_condition(sc, 1)}:")
                out.append(f"{indent}    {word}")
                self.features.add(word)
            elif kind == "nested":
                self.features.add("nested")
                outer = sc.indices[-1] if sc.indices and self.ch.chance(0.7) else None
                index = self.fresh("j")
                header, ix = self.range_header(sc, index, outer)
                out.append(f"{indent}for {index} in {header}:")
                inner = sc.child()
                inner.indices.append(ix)
                self.loop_body(inner, out, indent + "    ", depth, accs, bufs, trips * (ix.hi + 1),
                               can_exit=True, loop_depth=loop_depth + 1)
                did_something = True
            elif kind == "while":
                self.stmt_while(sc, out, indent, depth, accs, bufs, trips, loop_depth + 1)
                did_something = True
            else:
                self.call_helper(sc, out, indent, depth, in_loop=True)
        if not did_something:
            self.acc_update(sc, out, indent, depth, accs, trips)

    def loop_local(self, sc, out, indent, depth):
        shape = () if self.ch.chance(0.7) else self.ch.pick(
            [v.shape for v in sc.vars if v.shape] or [()])
        e = self.expr(sc, shape, depth)
        name = self.fresh("t")
        out.append(f"{indent}{name} = {self.bound_code(sc, e)}")
        sc.vars.append(Var(name, shape, e.bound, e.lo))
        if self.ch.chance(0.2):   # reassign it in the same iteration (a mutable local)
            e2 = self.tame(self.expr(sc, shape, 1))
            out.append(f"{indent}{name} = {name} * {e2.code}" if self.ch.chance(0.5)
                       else f"{indent}{name} = np.sin({name}) + {e2.code}")
            sc.vars[-1].bound = max(e.bound * e2.bound, 1 + e2.bound)

    def acc_update(self, sc, out, indent, depth, accs, trips):
        acc = self.ch.pick(accs)
        partners = [a for a in accs if a is not acc and a.shape == acc.shape]
        if partners and self.W("swap") and self.ch.chance(0.15):
            # `a, b = b + e, a`: every value is taken before either name is assigned
            other = self.ch.pick(partners)
            e = self.tame(self.expr(sc, acc.shape, 1))
            extra = f" + {e.code}" if self.ch.chance(0.5) else ""
            out.append(f"{indent}{acc.name}, {other.name} = {other.name}{extra}, {acc.name}")
            acc.bound = other.bound = max(acc.bound, other.bound) + e.bound * trips
            self.features.add("swap")
            return
        e = self.tame(self.expr(sc, acc.shape if self.ch.chance(0.7) else self.ch.pick(
            operand_shapes(acc.shape)), depth))
        form = self.ch.integer(0, 8)
        name = acc.name
        if form == 8 and len(acc.shape) == 1:
            # a product carried as the state (two buffers alternate: see scratch.py); the
            # matrix's entries are at most 0.9 / n, so the state shrinks
            n = acc.shape[0]
            named = [v.name for v in sc.vars if self.contracting.get(v.name) == n]
            if named:
                matrix = self.ch.pick(named)
            else:
                m = self.tame(self.sub(sc, (n, n), max(depth - 1, 0)), 1.0)
                matrix = f"({0.9 / n!r} * np.tanh({m.code}))"
            out.append(f"{indent}{name} = {matrix} @ {name}" if self.ch.chance(0.5)
                       else f"{indent}{name} = {name} @ {matrix}")
            self.features.add("carried_product")
            return
        if form >= 7:
            # a state carried from one iteration to the next: the rule of `tanh` reads its
            # output, that of `*` the state as the iteration enters (taped once: see carry.py)
            e1 = self.tame(self.expr(sc, acc.shape, max(depth - 1, 0)), 1.0)
            out.append(f"{indent}{name} = np.tanh({name} * {e1.code} + {e.code})")
            acc.bound = 1.0
            if acc.shape:
                self.features.add("carry")
            return
        if form <= 1:
            op = self.ch.pick(["+=", "-="])
            out.append(f"{indent}{name} {op} {e.code}")
            acc.bound += e.bound * trips
        elif form == 2:
            c = self.ch.pick([0.5, 0.9, 0.7])
            out.append(f"{indent}{name} = {name} * {c} + {e.code}")
            acc.bound += e.bound * trips
        elif form == 3:
            out.append(f"{indent}{name} = np.tanh({name}) + {e.code}")
            acc.bound = 1.0 + e.bound
        elif form == 4:
            e1 = self.tame(e, 1.0)
            out.append(f"{indent}{name} = {name} + {e1.code} * np.tanh({name})")
            acc.bound = acc.bound + e1.bound * trips
        elif form == 5:
            out.append(f"{indent}{name} *= (0.9 + 0.2 * np.tanh({e.code}))")
            acc.bound *= 1.1 ** min(trips, 64)
        else:
            out.append(f"{indent}{name} += {e.code} * {e.code}")
            acc.bound += e.bound ** 2 * trips
        if acc.bound > 1e3:
            # keep it O(1): squash it now
            out.append(f"{indent}{name} = np.tanh({name})")
            acc.bound = 1.0

    def buffer_store(self, sc, out, indent, depth, bufs, trips):
        buf = self.ch.pick(bufs)
        shape = buf.shape
        # what is addressed: one element, a row, a column
        if len(shape) == 1:
            lhs, vshape = f"{buf.name}[{self.index_for(sc, shape[0])}]", ()
            if self.ch.chance(0.15):
                k = self.ch.integer(0, shape[0] - 1)
                lhs, vshape = f"{buf.name}[{k}:{k + 1}]", (1,)
        else:
            form = self.ch.integer(0, 3)
            if form <= 1:
                lhs = f"{buf.name}[{self.index_for(sc, shape[0])}, {self.index_for(sc, shape[1])}]"
                vshape = ()
            elif form == 2:
                i = self.index_for(sc, shape[0])
                lhs = self.ch.pick([f"{buf.name}[{i}]", f"{buf.name}[{i}, :]"])
                vshape = (shape[1],)
            else:
                lhs, vshape = f"{buf.name}[:, {self.index_for(sc, shape[1])}]", (shape[0],)
        vshape = vshape if not vshape or self.ch.chance(0.8) else ()
        e = self.tame(self.expr(sc, vshape, depth))
        op = self.ch.pick(["=", "=", "+=", "-=", "*=", "="])
        if op == "*=":
            out.append(f"{indent}{lhs} *= (0.9 + 0.2 * np.tanh({e.code}))")
            buf.bound = buf.bound * 3.0 if buf.bound < 100 else buf.bound
            self.features.add("store")
            return
        out.append(f"{indent}{lhs} {op} {e.code}")
        buf.bound = e.bound if op == "=" else buf.bound + e.bound * trips
        if buf.bound > 1e3:
            buf.bound = 1e3
        self.features.add("store")

    def loop_if(self, sc, out, indent, depth, accs, bufs, trips, can_exit):
        cond = self.scalar_condition(sc, 1) if self.ch.chance(0.8) else self.int_condition(sc)
        out.append(f"{indent}if {cond}:")
        for branch in (0, 1):
            if branch == 1:
                if self.ch.chance(0.35):
                    break
                out.append(f"{indent}else:")
            inner = sc.child()
            for _ in range(self.ch.integer(1, 2)):
                kind = self.ch.weighted([(3, "acc"), (2 if bufs else 0, "store"), (1, "local"),
                                         (self.W("exit") if can_exit else 0, "exit")])
                if kind == "acc":
                    self.acc_update(inner, out, indent + "    ", depth, accs, trips)
                elif kind == "store":
                    self.buffer_store(inner, out, indent + "    ", depth, bufs, trips)
                elif kind == "local":
                    self.loop_local(inner, out, indent + "    ", depth)
                else:
                    word = "break" if can_exit == "break" else self.ch.pick(["break", "continue"])
                    out.append(f"{indent}    {word}")
                    self.features.add(word)
                    break
        self.features.add("if")

    def int_condition(self, sc):
        if not sc.indices:
            return "True"
        ix = self.ch.pick(sc.indices)
        return self.ch.pick([f"{ix.code} % 2 == 0", f"{ix.code} > {max(ix.lo, 0)}",
                             f"{ix.code} < 2", f"{ix.code} != 1"])

    # ---- helpers ------------------------------------------------------------------
    def make_helper(self, sc):
        """Define a helper function h<k>(a, b[, c=...]) and return its description."""
        name = f"h{self.helper_count}"
        self.helper_count += 1
        nparams = self.ch.integer(1, 2)
        params = []
        hs = Scope([], [], {}, name)
        lines = []
        for k in range(nparams):
            shape = self.pick_shape(sc)
            pname = "abc"[k]
            self.arg_names.add(pname)
            params.append((pname, shape))
            hs.vars.append(Var(pname, shape, 1.0))
            for axis, size in enumerate(shape):
                hs.dims.setdefault(size, f"{pname}.shape[{axis}]")
        default = None
        if self.ch.chance(0.25):
            default = self.ch.pick([0.5, 1.5, -0.3])
            hs.vars.append(Var("c", (), abs(default)))
        for _ in range(self.ch.integer(0, 2)):
            self.stmt_assign(hs, lines, "    ", 2)
        if self.helpers and self.ch.chance(0.3):   # a helper calling an earlier helper
            self.call_helper(hs, lines, "    ", 2, in_loop=False, allow_new=False)
        if self.ch.chance(0.3) and self.W("for"):
            # a small loop inside the helper
            arrays = [v for v in hs.vars if len(v.shape) >= 1]
            if arrays:
                acc = self.fresh("s")
                lines.append(f"    {acc} = 0.0")
                accv = Var(acc, (), 0.0, written=True)
                hs.vars.append(accv)
                self.loop(hs, lines, "    ", 2, [accv], [], outer=None, trips=1)
                self.features.add("for")
        out_shape = self.pick_shape(hs)
        e = self.expr(hs, out_shape, 2)
        lines.append(f"    return {self.copy_if_view(hs, e)}")
        sig = ", ".join(p for p, _ in params) + (f", c={default}" if default is not None else "")
        src = f"def {name}({sig}):\n" + "\n".join(lines) + "\n"
        self.helper_sources.append(src)
        h = (name, params, default, out_shape, e.bound)
        self.helpers.append(h)
        self.features.add("helper")
        return h

    def call_helper(self, sc, out, indent, depth, in_loop, allow_new=True):
        if self.helpers and (not allow_new or self.ch.chance(0.6)):
            h = self.ch.pick(self.helpers)
        elif allow_new:
            h = self.make_helper(sc)
        else:
            return
        name, params, default, out_shape, bound = h
        exprs = [self.tame(self.expr(sc, shape, max(depth - 1, 1)), 1.0) for _, shape in params]
        args = [e.code for e in exprs]
        viewed = {n for e in exprs for n in e.view}
        for var in sc.vars:   # the helper may return (a view of) an argument
            if var.name in viewed:
                var.owns = False
        if default is not None and self.ch.chance(0.5):
            args.append(fmt_const(self.ch.pick([0.2, -0.6])))
        v = self.fresh("t" if in_loop else "v")
        out.append(f"{indent}{v} = {name}({', '.join(args)})")
        sc.vars.append(Var(v, out_shape, bound))

    # ---- the whole program ------------------------------------------------------------
    def program(self, label=""):
        ch = self.ch
        n = ch.integer(2, 4)
        m = ch.pick([m for m in (2, 3, 4, 5) if m != n] + [n])
        params, sc = [], Scope([], [], {}, "f")
        shapes_pool = [(n,), (n, m), (m,), (1, m), (n, 1), (n, m), (n,)]
        n_arrays = ch.integer(1, 3)
        names = []
        for k in range(n_arrays):
            shape = shapes_pool[0] if k == 0 else ch.pick(shapes_pool)
            low, high = ch.pick([(-1.5, 1.5), (-1.0, 1.0), (0.2, 1.8), (-1.2, 1.5), (-2.0, -0.3)])
            p = Param(f"x{k}", "array", shape, low, high)
            params.append(p)
            sc.vars.append(Var(p.name, shape, max(abs(low), abs(high)), max(low, 0.0)))
            names.append(p.name)
            self.arg_names.add(p.name)
        if ch.chance(0.4):
            low, high = ch.pick([(-1.0, 1.0), (0.3, 1.5)])
            params.append(Param("s0", "float", (), low, high))
            sc.vars.append(Var("s0", (), max(abs(low), abs(high)), max(low, 0.0)))
        use_k = ch.chance(0.2)
        lines = []
        # sizes: n, m from the arguments' shapes
        for size, dname in ((n, "n"), (m, "m")):
            if size in sc.dims:
                continue
            src = next(((p, ax) for p in params if p.kind == "array"
                        for ax, s in enumerate(p.shape) if s == size), None)
            if src is None:
                continue
            p, ax = src
            if len(p.shape) == 2 and p.shape == (n, m) and n != m and "n" not in sc.dims.values() \
                    and ch.chance(0.5):
                lines.append(f"    n, m = {p.name}.shape")
                sc.dims[n], sc.dims[m] = "n", "m"
                continue
            form = ch.integer(0, 2)
            if form == 0 and ax == 0:
                lines.append(f"    {dname} = len({p.name})")
            else:
                lines.append(f"    {dname} = {p.name}.shape[{ax}]")
            sc.dims[size] = dname
        if use_k:
            kval = ch.integer(1, min(n, m))
            params.append(Param("K", "int", value=kval))
            sc.K = kval
        wrt_pool = [p.name for p in params if p.kind in ("array", "float")]
        k = ch.integer(1, len(wrt_pool))
        wrt = tuple(wrt_pool[:k]) if ch.chance(0.6) else tuple(
            sorted({ch.pick(wrt_pool) for _ in range(k)}, key=wrt_pool.index))
        depth = ch.integer(1, max(1, self.W("max_depth")))
        n_stmts = ch.integer(1, max(1, self.W("max_stmts")))
        for _ in range(n_stmts):
            kind = ch.weighted([(self.W("assign"), "assign"), (self.W("reassign"), "reassign"),
                                (self.W("for"), "for"), (self.W("while"), "while"),
                                (self.W("if"), "if"), (self.W("helper"), "helper"),
                                (self.W("slice_store"), "slice_store"), (self.W("alias"), "alias"),
                                (self.W("logsoftmax"), "logsoftmax")])
            if kind == "helper":
                self.call_helper(sc, lines, "    ", depth, in_loop=False)
            else:
                getattr(self, "stmt_" + kind)(sc, lines, "    ", depth)
        ret = self.return_expr(sc, depth)
        lines.append(f"    return {ret}")
        header = ("import math\n" if "math" in self.features else "") + "import numpy as np\n" + (
            "from srcdiff import nn\n" if "nn" in self.features else "") + "\n\n"
        body = "def f(" + ", ".join(p.name for p in params) + "):\n" + "\n".join(lines) + "\n"
        if self.globals:
            header += "".join(f"{name} = {value!r}\n" for name, value in self.globals) + "\n\n"
        source = header + "".join(h + "\n\n" for h in self.helper_sources) + body
        seed = ch.integer(0, 2 ** 31 - 1)
        return Program(source, params, wrt, frozenset(self.features), seed, label)

    def return_expr(self, sc, depth):
        """np.sum(...) of the values defined, weighting the loop results in."""
        terms = []
        defined = [v for v in sc.vars if not v.name.startswith("x") and v.name not in ("s0",)]
        written = [v for v in defined if v.written]
        recent = [v for v in defined if not v.written][-2:]
        for v in written + recent:
            if self.ch.chance(0.85):
                terms.append(self.term(v))
        if not terms or self.ch.chance(0.3):
            shape = self.pick_shape(sc)
            e = self.expr(sc, shape, depth)
            terms.append(f"np.sum({e.code})" if shape else e.code)
        if len(terms) == 1 and terms[0].startswith("np.sum") is False and self.ch.chance(0.5):
            return terms[0]
        return " + ".join(terms) if len(terms) > 1 or terms[0].startswith("np.") else terms[0]

    def term(self, v):
        form = self.ch.integer(0, 3)
        x = v.name if v.bound <= LIMIT else f"np.tanh({v.name})"
        if not v.shape:
            return [f"{x}", f"np.sin({x})", f"{x} * {x}", f"0.5 * {x}"][form]
        return [f"np.sum({x})", f"np.sum(np.sin({x}))", f"np.sum({x} * {x})", f"np.mean({x})"][form]


def program_from_seed(seed, weights=None):
    """The program for an integer seed (deterministic)."""
    return Generator(RandomChooser(seed), weights).program(label=f"seed={seed}")


if st is not None:
    @st.composite
    def programs(draw, weights=None):
        """Hypothesis strategy: a random srcdiff-subset `Program`."""
        return Generator(DrawChooser(draw), weights).program(label="hypothesis")
