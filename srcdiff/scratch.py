"""Matrix-vector products inside loops write into buffers that later iterations reuse.

`t3 = vecmat(t2, Wx)`, read once by arithmetic (whose value is a new array), becomes
`vecmat_fill(t3, t2, Wx)`, with `t3 = np.empty(Wx.shape[1], np.float64)` before the loop:
the product's array is allocated once per loop rather than once per iteration, and the
call returns nothing, so the loop does no reference counting for it. A matrix the loop
rebinds has no fixed size: `t3 = vecmat_into(t3, t2, W)` then writes into `t3` when it
has the product's shape (`t3 = np.empty((0,), np.float64)` before the loop).

A product that becomes the state a loop carries (`dh = dt10`, `h = t4`) lives one
iteration longer, so it alternates between two buffers:

    matvec_fill(dt10_a, Wh, dt4)
    dt10 = dt10_a
    dt10_a, dt10_b = dt10_b, dt10

The buffer written in one iteration is written again two iterations later. By then the
state has been rebound, and every other name that held it was a temporary of its own
iteration; a value that could outlive that (a view kept in another name, a `break`)
keeps its allocation.
"""
import ast
import copy

import numpy as np

from .optimize import name_counts, nested_blocks
from .sym import Sym, empty_array, np_

INTO = {"vecmat": "vecmat_into", "matvec": "matvec_into"}
FILL = {"vecmat": "vecmat_fill", "matvec": "matvec_fill"}
RESULT_AXIS = {"vecmat": 1, "matvec": 0}     # the matrix's axis the product runs along
# calls whose value never shares memory with an argument (the first argument of an
# `_into` call is the buffer it may return, so it is not among them)
COPYING_CALLS = {
    "vecmat", "matvec", "add_outer", "push_array", "push_extremes", "sum_over",
    "sum_over_keep", "mean_over", "mean_over_keep", "max_over", "max_over_keep", "min_over",
    "min_over_keep", "max_all", "min_all", "spread", "spread_all", "tie_mask", "tie_mask_all",
    "tie_share_all", "add_tie_share_all", "add_tie_share_at", "softmax_over",
    "log_softmax_over", "logsumexp_over_keep", "softmax_all", "log_softmax_all",
    "logsumexp_all", "len", "sum", "mean", "dot", "outer", "matmul", "copy", "zeros_like",
    "ones_like", "empty_like", "where", "clip", "var", "std", "max", "min", "cumsum", "arange",
    "linspace", "eye",
    "reversed_cumsum", "vecmat_fill", "matvec_fill",
}
UFUNCS = {name for name, value in vars(np).items() if isinstance(value, np.ufunc)}
COPYING_CALLS |= UFUNCS
# calls whose value may be their first argument itself
PASSING_CALLS = {"unbroadcast", "unbroadcast_to", "as_dtype_of"}
SHAPE_ATTRIBUTES = {"shape", "size", "ndim", "dtype"}


def reuse_product_buffers(stmts, tys, counts, names):
    """Rewrite the products in the loops of `stmts` (recursively), in place."""
    parents = {id(child): node for stmt in stmts for node in ast.walk(stmt)
               for child in ast.iter_child_nodes(node)}
    _rewrite(stmts, tys, counts, _Carried(parents, names))


def _rewrite(stmts, tys, counts, carried):
    position = 0
    while position < len(stmts):
        loop = stmts[position]
        buffers = []
        if isinstance(loop, (ast.For, ast.While)) and not loop.orelse:
            for stmt in list(loop.body):
                name = _product(stmt, tys)
                if name and counts.get(name) == (1, 1) and carried.read_once(loop.body, name):
                    filled = _fill(loop.body, stmt, name, name, tys)
                    buffers.append(filled[0] if filled else _into(stmt, name, name, tys))
                elif name and carried.state_of(loop.body, stmt, name, counts):
                    buffers += carried.alternate(loop.body, stmt, name, tys)
        stmts[position:position] = buffers
        position += len(buffers) + 1
    for block in nested_blocks(stmts):
        _rewrite(block, tys, counts, carried)


def _product(stmt, tys):
    """The name `stmt` sets to a product of operands of its dtype, or None."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id in INTO):
        return None
    name = stmt.targets[0].id
    operands = stmt.value.args
    if name not in tys or not all(isinstance(a, ast.Name) and a.id in tys for a in operands):
        return None
    dtype = tys[name].dtype
    return name if all(tys[a.id].dtype == dtype for a in operands) else None


def _into(stmt, name, buffer, tys):
    """Make `stmt` write its product into `buffer`; return the buffer's empty start."""
    stmt.value.func.id = INTO[stmt.value.func.id]
    stmt.value.args.insert(0, ast.Name(buffer, ast.Load()))
    return _empty(buffer, name, tys)


def _fill(body, stmt, name, buffer, tys):
    """When the product's matrix is the same in every iteration of the loop `body`: make
    `stmt` fill `buffer` (`vecmat_fill(t3, t2, Wx)`, a call that returns nothing, so the
    loop does no reference counting for it), followed by `name = buffer` if they differ.
    Returns (the buffer's start, sized once before the loop: `t3 = np.empty(Wx.shape[1],
    np.float64)`, the last statement now standing for `stmt`), or None."""
    called = stmt.value.func.id
    matrix = stmt.value.args[1] if called == "vecmat" else stmt.value.args[0]
    if name_counts(body).get(matrix.id, (0, 0))[0]:
        return None
    filled = [ast.Expr(ast.Call(ast.Name(FILL[called], ast.Load()),
                                [ast.Name(buffer, ast.Load())] + stmt.value.args, []))]
    if buffer != name:
        filled.append(ast.Assign([ast.Name(name, ast.Store())], ast.Name(buffer, ast.Load())))
    at = next(k for k, s in enumerate(body) if s is stmt)
    body[at:at + 1] = filled
    size = Sym(matrix.id).attr("shape")[RESULT_AXIS[called]]
    start = ast.Assign([ast.Name(buffer, ast.Store())],
                       np_.empty(size, Sym("np").attr(tys[name].dtype)).node)
    return start, filled[-1]


def _empty(buffer, name, tys):
    """`buffer = np.empty((0,), dtype)`, typed as the product `name`."""
    return ast.Assign([ast.Name(buffer, ast.Store())],
                      empty_array(tys[name].ndim, tys[name].dtype).node)


class _Carried:
    """Finds products that a loop carries to its next iteration (see the module docstring)."""

    def __init__(self, parents, names):
        self.parents = parents
        self.names = names

    def read_once(self, body, name):
        """True if the one read of `name` in `body` makes a new value from it."""
        loads = _loads(body, name)
        return len(loads) == 1 and self._kept(loads[0]) is None

    def state_of(self, body, stmt, name, counts):
        """True if the product `stmt` sets, held by `name` or by the one name it is then
        copied to, is a state two buffers can hold: rebound once per iteration, and read
        by nothing that keeps it longer."""
        if any(isinstance(n, (ast.Break, ast.Continue, ast.Return))
               for s in body for n in ast.walk(s)):
            return False
        index = body.index(stmt)
        copies = [s for s in body[index + 1:] if _copies(s, name)]
        if counts.get(name) == (1, 1) and len(copies) == 1:
            state = copies[0].targets[0].id
        else:
            state = name
        return _stores(body, state) == 1 and all(
            self._used_in_iteration(n, body) for n in _loads(body, state))

    def alternate(self, body, stmt, name, tys):
        """Rewrite `stmt` to write into two alternating buffers; return their empty starts."""
        first, second = self.names.fresh(f"{name}_a"), self.names.fresh(f"{name}_b")
        filled = _fill(body, stmt, name, first, tys)
        if filled is None:
            starts = [_into(stmt, name, first, tys), _empty(second, name, tys)]
        else:
            start, stmt = filled
            starts = [start, ast.Assign([ast.Name(second, ast.Store())], copy.deepcopy(start.value))]
        swap = ast.Assign([ast.Tuple([ast.Name(first, ast.Store()), ast.Name(second, ast.Store())],
                                     ast.Store())],
                          ast.Tuple([ast.Name(second, ast.Load()), ast.Name(name, ast.Load())],
                                    ast.Load()))
        body.insert(next(k for k, s in enumerate(body) if s is stmt) + 1, swap)
        return starts

    def _used_in_iteration(self, load, body):
        """True if the array `load` reads is not kept past this iteration: it is only
        read into new values, or held by a temporary set once per iteration before any
        of its reads."""
        node = self._kept(load)
        if node is None:
            return True
        parent = self.parents.get(id(node))
        if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1 and parent.value is node
                and isinstance(parent.targets[0], ast.Name) and any(s is parent for s in body)):
            return False
        temp = parent.targets[0].id
        index = next(k for k, s in enumerate(body) if s is parent)
        if _stores(body, temp) != 1 or _loads(body[:index + 1], temp):
            return False
        return all(self._kept(n) is None for n in _loads(body[index + 1:], temp))

    def _kept(self, node):
        """None if the array `node` evaluates to is only read; otherwise the expression
        whose value may be that array (or a view of it), which its parent keeps."""
        parent = self.parents.get(id(node))
        if isinstance(parent, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp)):
            return None
        if isinstance(parent, ast.AugAssign) and node is parent.value:
            return None
        if isinstance(parent, ast.Assign) and node is parent.value \
                and all(isinstance(t, ast.Subscript) for t in parent.targets):
            return None
        if isinstance(parent, ast.Attribute) and parent.attr in SHAPE_ATTRIBUTES:
            return None
        if isinstance(parent, ast.Subscript) and node is not parent.value:
            return None
        if isinstance(parent, ast.IfExp) and node is parent.test:
            return None
        if isinstance(parent, ast.Call) and any(a is node for a in parent.args):
            return self._kept_by_call(parent, node)
        if isinstance(parent, (ast.Subscript, ast.IfExp)) or \
                (isinstance(parent, ast.Attribute) and parent.attr == "T"):
            return self._kept(parent)
        return node

    def _kept_by_call(self, call, node):
        called = called_name(call)
        first = call.args[0] is node
        if writes_out(call, called):
            return node                            # a positional `out` array
        if called in COPYING_CALLS or (called in INTO.values() and not first):
            return None
        if called in PASSING_CALLS and first:
            return self._kept(call)
        return node


def _stores(stmts, name):
    return name_counts(stmts).get(name, (0, 0))[0]


def _loads(stmts, name):
    """The nodes of `stmts` that read `name`."""
    return [n for s in stmts for n in ast.walk(s)
            if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]


def _copies(stmt, name):
    """True if `stmt` is `other = name`."""
    return (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Name)
            and stmt.value.id == name)


def writes_out(call, called):
    """Whether `call` of ufunc `called` passes a positional `out` array."""
    return called in UFUNCS and len(call.args) > getattr(np, called).nin


def called_name(call):
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
            and func.value.id in ("np", "math"):
        return func.attr
    return None

