"""One division where the backward divides by the same number several times.

The rules of `a / b` and `np.sqrt(x)` divide by their value: undoing
`r = np.sqrt(s); e = m / r` divides by `r` three times (`m / r`, `... * e / r`,
`dr / (2.0 * r)`), and a division costs several times a multiplication. In each block
of the backward, a float64 number that two or more of its statements divide by gets
its reciprocal once, `inv_r = 1.0 / r`, and those statements multiply by it
(`dr * inv_r / 2.0` for `dr / (2.0 * r)`). The result may differ from the quotient in
its last bit.
"""
import ast

from .optimize import nested_blocks


def share_reciprocals(stmts, scalars, names):
    """Rewrite, in place, every block of `stmts` (the backward's statements); `scalars` are
    the names of float64 numbers, `names` allocates the reciprocals' names."""
    for inner in nested_blocks(stmts):
        share_reciprocals(inner, scalars, names)
    counts = {}
    for stmt in stmts:
        if _simple(stmt):
            for d in dict.fromkeys(_divisors(stmt, scalars)):
                counts[d] = counts.get(d, 0) + 1
    for d, count in counts.items():
        if count >= 2:
            _share(stmts, d, scalars, names)


def _share(stmts, d, scalars, names):
    uses = [k for k, s in enumerate(stmts) if _simple(s) and d in _divisors(s, scalars)]
    if any(_binds(s, d) for s in stmts[uses[0]:uses[-1] + 1]) or any(
            not _simple(s) and _mentions(s, d) for s in stmts[uses[0]:uses[-1] + 1]):
        return            # d changes, or is used in a nested block, between its divisions
    inverse = names.fresh(f"inv_{d}")
    for k in uses:
        _Multiply(d, inverse).visit(stmts[k])
    stmts.insert(uses[0], ast.Assign([ast.Name(inverse, ast.Store())],
                                     ast.BinOp(ast.Constant(1.0), ast.Div(), ast.Name(d, ast.Load()))))


def _simple(stmt):
    return isinstance(stmt, (ast.Assign, ast.AugAssign))


def _divisors(stmt, scalars):
    """Names of numbers in `scalars` that `stmt` divides by (`x / d` or `x / (c * d)`)."""
    found = []
    for node in ast.walk(stmt.value):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            name = _divisor_name(node.right)
            if name in scalars:
                found.append(name)
    return found


def _divisor_name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) \
            and isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Name):
        return node.right.id
    return None


class _Multiply(ast.NodeTransformer):
    """`x / d` becomes `x * inv_d`, and `x / (c * d)` becomes `x * inv_d / c`."""

    def __init__(self, d, inverse):
        self.d, self.inverse = d, inverse

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if not (isinstance(node.op, ast.Div) and _divisor_name(node.right) == self.d):
            return node
        product = ast.BinOp(node.left, ast.Mult(), ast.Name(self.inverse, ast.Load()))
        if isinstance(node.right, ast.Name):
            return product
        return ast.BinOp(product, ast.Div(), node.right.left)


def _binds(stmt, name):
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return any(isinstance(t, ast.Name) and t.id == name for t in targets)


def _mentions(stmt, name):
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(stmt))
