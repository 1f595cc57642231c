"""Symbolic expressions that build `ast` nodes, so gate rules read like the math.

`Sym("x") * Sym("g")` is the AST of `x * g`; `np.exp(x)` is spelt `np_.exp(x)`;
a runtime helper is `helper("unbroadcast", g, x)`. A few peepholes keep the
generated code clean (`g * 1.0` -> `g`, `-(-g)` -> `g`). A negative number is
built as `-(0.5)` (a unary minus), so `ast.unparse` parenthesises it where
precedence needs it: `(-0.5) ** 2`, not `-0.5 ** 2`.
"""
import ast
import math


class Sym:
    __slots__ = ("node",)

    def __init__(self, node):
        if isinstance(node, str):
            node = ast.Name(node, ast.Load())
        elif isinstance(node, (int, float, bool)):
            node = number_node(node)
        self.node = node

    # arithmetic -------------------------------------------------------------
    def _bin(self, op, other, swap=False):
        other = lift(other)
        left, right = (other, self) if swap else (self, other)
        return Sym(ast.BinOp(left.node, op, right.node))

    def __add__(self, o):
        return self if is_const(o, 0) else self._bin(ast.Add(), o)

    def __radd__(self, o):
        return self if is_const(o, 0) else self._bin(ast.Add(), o, True)

    def __sub__(self, o):
        return self._bin(ast.Sub(), o)

    def __rsub__(self, o):
        return self._bin(ast.Sub(), o, True)

    def __mul__(self, o):
        return self if is_const(o, 1) else self._bin(ast.Mult(), o)

    def __rmul__(self, o):
        return self if is_const(o, 1) else self._bin(ast.Mult(), o, True)

    def __truediv__(self, o):
        return self if is_const(o, 1) else self._bin(ast.Div(), o)

    def __rtruediv__(self, o):
        return self._bin(ast.Div(), o, True)

    def __pow__(self, o):
        return self._bin(ast.Pow(), o)

    def __matmul__(self, o):
        return self._bin(ast.MatMult(), o)

    def __neg__(self):
        if isinstance(self.node, ast.UnaryOp) and isinstance(self.node.op, ast.USub):
            return Sym(self.node.operand)
        return Sym(ast.UnaryOp(ast.USub(), self.node))

    # comparisons build ast.Compare; use .eq for == and .ne for !=, keeping __eq__ for identity
    def _cmp(self, op, o):
        return Sym(ast.Compare(self.node, [op], [lift(o).node]))

    def __gt__(self, o):
        return self._cmp(ast.Gt(), o)

    def __lt__(self, o):
        return self._cmp(ast.Lt(), o)

    def __ge__(self, o):
        return self._cmp(ast.GtE(), o)

    def __le__(self, o):
        return self._cmp(ast.LtE(), o)

    def eq(self, o):
        return self._cmp(ast.Eq(), o)

    def ne(self, o):
        return self._cmp(ast.NotEq(), o)

    # access -----------------------------------------------------------------
    @property
    def T(self):
        return Sym(ast.Attribute(self.node, "T", ast.Load()))

    def attr(self, name):
        return Sym(ast.Attribute(self.node, name, ast.Load()))

    def method(self, name, *args):
        return Sym(ast.Call(ast.Attribute(self.node, name, ast.Load()), [lift(a).node for a in args], []))

    def __getitem__(self, index):
        return Sym(ast.Subscript(self.node, lift(index).node, ast.Load()))

    def __repr__(self):
        return ast.unparse(self.node)


def lift(value):
    return value if isinstance(value, Sym) else Sym(value)


def number_node(value):
    """A number as an AST; a negative one is a unary minus on its magnitude."""
    if isinstance(value, bool) or not math.copysign(1, value) < 0:
        return ast.Constant(value)
    return ast.UnaryOp(ast.USub(), ast.Constant(-value))


def number(value):
    """The number a Python value or a `Sym` of a numeric constant stands for, else None."""
    if isinstance(value, Sym):
        node, sign = value.node, 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node, sign = node.operand, -1
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return sign * node.value
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def is_const(value, wanted):
    return number(value) == wanted


def call(func_node, *args, **kwargs):
    return Sym(ast.Call(func_node, [lift(a).node for a in args],
                        [ast.keyword(k, lift(v).node) for k, v in kwargs.items()]))


class _Module:
    """`np_.exp(x)` -> Sym of `np.exp(x)`."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return lambda *args, **kwargs: call(ast.Attribute(ast.Name(self._name, ast.Load()), attr,
                                                          ast.Load()), *args, **kwargs)


np_ = _Module("np")


def helper(name, *args):
    """A call to a runtime helper imported by every generated module."""
    return call(ast.Name(name, ast.Load()), *args)


def builtin(name, *args):
    return call(ast.Name(name, ast.Load()), *args)


def linalg(name, *args):
    """`np.linalg.<name>(*args)`."""
    return Sym("np").attr("linalg").method(name, *args)


def tuple_(items):
    return Sym(ast.Tuple([lift(i).node for i in items], ast.Load()))


def empty_array(ndim, dtype):
    """`np.empty((0,) * ndim, np.<dtype>)`: an array of that type holding nothing."""
    return np_.empty(tuple_([0] * ndim), Sym("np").attr(dtype))


def if_else(test, body, orelse):
    return Sym(ast.IfExp(lift(test).node, lift(body).node, lift(orelse).node))


def product(x, n):
    """x * x * ... * x with n factors, multiplied left to right."""
    result = x
    for _ in range(n - 1):
        result = result * x
    return result
