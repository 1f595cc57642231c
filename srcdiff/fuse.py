"""Elementwise chains of the forward written as one expression.

`t5 = t3 + t4; t6 = t5 + b; t11 = np.tanh(t6)` allocates an array for every step;
written `t11 = np.tanh(t3 + t4 + b)`, numba evaluates it in one loop into one new
array. A temporary is folded into the statement that reads it when it is an array
computed elementwise, stored and read once in the whole function, and the statements
between the two only bind other names (so nothing it reads changes on the way).
"""
import ast

from .graph import Op, walk
from .optimize import nested_blocks

ELEMENTWISE_GATES = {
    "add", "sub", "mul", "div", "pow", "neg", "square", "maximum", "minimum", "exp", "log",
    "sqrt", "sin", "cos", "tan", "tanh", "abs", "log1p", "expm1", "sign", "arctan", "sinh",
    "cosh", "floor", "ceil", "arctan2", "arcsin", "arccos", "arcsinh", "arccosh", "arctanh",
    "log10", "log2", "exp2", "cbrt", "hypot", "round",
}


def elementwise_arrays(graph, tys):
    """The names of arrays `graph` computes elementwise."""
    return {op.out for op, _ in walk(graph.body)
            if isinstance(op, Op) and op.gate in ELEMENTWISE_GATES and op.out
            and tys[op.out].is_array}


def fuse_elementwise(stmts, names, counts):
    """Fold each temporary in `names` read once into its reader, in place, in every block."""
    position = 0
    while position < len(stmts):
        reader = _reader(stmts, position, names, counts)
        if reader is None:
            position += 1
            continue
        temp = stmts.pop(position)
        _Substitute(temp.targets[0].id, temp.value).visit(stmts[reader - 1])
    for block in nested_blocks(stmts):
        fuse_elementwise(block, names, counts)


def _reader(stmts, position, names, counts):
    """Where the statement that reads the temporary set at `position` is, if it can take it."""
    stmt = stmts[position]
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)):
        return None
    name = stmt.targets[0].id
    if name not in names or counts.get(name) != (1, 1):
        return None
    reads = {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}
    for later in range(position + 1, len(stmts)):
        following = stmts[later]
        if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(following)):
            simple = isinstance(following, (ast.Assign, ast.AugAssign, ast.Expr, ast.Return))
            return later if simple else None
        if not _binds_other_names(following, reads):
            return None
    return None


def _binds_other_names(stmt, reads):
    return isinstance(stmt, ast.Assign) and all(
        isinstance(t, ast.Name) and t.id not in reads for t in stmt.targets)


class _Substitute(ast.NodeTransformer):
    def __init__(self, name, value):
        self.name, self.value = name, value

    def visit_Name(self, node):
        return self.value if node.id == self.name and isinstance(node.ctx, ast.Load) else node
