"""Shape checks for the arrays whose adjoint a backward loop resets to zeros.

Undoing `d = ...` inside a reverse loop resets `dd = np.zeros_like(d)`, with the shape `d`
has at the end of the forward. That is right for an array that keeps its shape through
the loop, and wrong for one that changes shape from one iteration to the next (`d =
x[:i + 1] - x[i + 1]`), where numba would go on with the wrong shapes silently. So the
gradient's forward checks, after each such binding in a loop, that the array kept its shape.
"""
import ast

from .sym import Sym, helper


def check_reset_shapes(forward, backward, adjoints, names):
    """Insert, in place, shape checks into the loops of `forward` for each array whose
    adjoint a loop of `backward` resets to `np.zeros_like(array)`."""
    primal = {adj: name for name, adj in adjoints.items()}
    reset = {primal[target] for loop in _loops(backward) for target in _zeroed_in(loop)
             if target in primal}
    for loop in _loops(forward):
        loop.body[:] = _checked(loop.body, reset, names)


def _checked(stmts, reset, names):
    out = []
    for k, stmt in enumerate(stmts):
        name = _bound_name(stmt)
        already = k + 1 < len(stmts) and _is_check(stmts[k + 1])
        if name in reset and not already and name not in _names_read(stmt.value):
            before = names.fresh(name + "_shape")
            out.append(ast.Assign([ast.Name(before, ast.Store())], Sym(name).attr("shape").node))
            out.append(stmt)
            out.append(ast.Expr(helper("keeps_shape", Sym(name), Sym(before),
                                       Sym(ast.Constant(name))).node))
            continue
        out.append(stmt)
    return out


def _is_check(stmt):
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    return isinstance(call, ast.Call) and getattr(call.func, "id", "").startswith("keeps_shape")


def _bound_name(stmt):
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    return None


def _names_read(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _zeroed_in(loop):
    """Names a loop (nested statements included) sets to `np.zeros_like(...)`."""
    for stmt in ast.walk(loop):
        value = getattr(stmt, "value", None)
        if isinstance(stmt, ast.Assign) and isinstance(value, ast.Call) \
                and getattr(value.func, "attr", "") == "zeros_like" and _bound_name(stmt):
            yield _bound_name(stmt)


def _loops(stmts):
    for stmt in stmts:
        for node in ast.walk(stmt):
            if isinstance(node, (ast.For, ast.While)):
                yield node
