"""Shape checks for the arrays whose adjoint a backward loop resets to `np.zeros_like`.

Undoing an assignment that rebinds an array (`h = xb @ W1`) resets its adjoint to zeros
shaped as the value it replaced, from dims read (and taped) just before the assignment
(`analysis.old_shapes`), so an array may change shape from one iteration to the next (a
last, shorter minibatch). Other resets are `dd = np.zeros_like(d)`, with the shape `d` has
where the backward reads it; for an array that changed shape, numba would go on with the
wrong shapes silently. So the gradient's forward checks, after each binding in a loop of
an array whose adjoint a backward loop resets that way, that the array kept its shape.
"""
import ast

from .sym import Sym, helper


def check_reset_shapes(body, adjoints, names, params):
    """Insert, in place, shape checks into the loops of the gradient's forward (the statements
    of `body` before its `# backward` mark) for each array, bound before the loop, whose
    adjoint a loop of the backward resets to `np.zeros_like(array)`."""
    mark = next(k for k, s in enumerate(body) if _is_mark(s))
    primal = {adj: name for name, adj in adjoints.items()}
    reset = {primal[target] for loop in _loops(body[mark:]) for target in _zeroed_in(loop)
             if target in primal}
    if reset:
        body[:mark] = _walk(body[:mark], reset, names, set(params))


def _walk(stmts, reset, names, bound):
    """`stmts` with the checks in their loops; `bound` are the names set before them."""
    out = []
    for stmt in stmts:
        if isinstance(stmt, (ast.For, ast.While)):
            stmt.body[:] = _checked(_walk(stmt.body, reset, names, set(bound)), reset, names, bound)
        name = _bound_name(stmt)
        if name:
            bound.add(name)
        out.append(stmt)
    return out


def _is_mark(stmt):
    value = getattr(stmt, "value", None)
    return isinstance(stmt, ast.Expr) and isinstance(value, ast.Constant) \
        and isinstance(value.value, str) and value.value.endswith("backward")


def _checked(stmts, reset, names, bound):
    out = []
    for k, stmt in enumerate(stmts):
        name = _bound_name(stmt)
        already = k + 1 < len(stmts) and _is_check(stmts[k + 1])
        if name in reset and name in bound and not already and name not in _names_read(stmt.value):
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
