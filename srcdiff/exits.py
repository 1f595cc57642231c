"""`break` and `continue` as flags, so loop bodies stay structured for the reverse sweep.

Inside one loop body, `continue` becomes `skip = True` and `break` becomes
`skip = True; broke = True`; every statement after one that may set the flags
is guarded by `if not skip:`. The body starts with `skip = False`; the loop then
ends its iteration with a real `break` when `broke` is set (see reverse.py), and
the backward runs over exactly the iterations that were executed.
"""
import ast


def contains_exit(stmts):
    """True if a `break`/`continue` of this loop (not of an inner one) is in `stmts`."""
    for s in stmts:
        if isinstance(s, (ast.Break, ast.Continue)):
            return True
        if isinstance(s, ast.If) and (contains_exit(s.body) or contains_exit(s.orelse)):
            return True
    return False


def contains_break(stmts):
    for s in stmts:
        if isinstance(s, ast.Break):
            return True
        if isinstance(s, ast.If) and (contains_break(s.body) or contains_break(s.orelse)):
            return True
    return False


def rewrite_body(stmts, skip, broke):
    """The loop body with exits turned into flag assignments and guards."""
    start = _set(skip, False, stmts[0])
    return [start] + _guard(stmts, skip, broke)


def _guard(stmts, skip, broke):
    out = []
    for i, s in enumerate(stmts):
        if isinstance(s, ast.Continue):
            return out + [_set(skip, True, s)]
        if isinstance(s, ast.Break):
            return out + [_set(skip, True, s), _set(broke, True, s)]
        if isinstance(s, ast.If) and contains_exit([s]):
            new = ast.copy_location(ast.If(s.test, _guard(s.body, skip, broke) or [ast.Pass()],
                                           _guard(s.orelse, skip, broke)), s)
            out.append(new)
            rest = _guard(stmts[i + 1:], skip, broke)
            if rest:
                test = ast.copy_location(ast.UnaryOp(ast.Not(), ast.Name(skip, ast.Load())), s)
                out.append(ast.copy_location(ast.If(test, rest, []), stmts[i + 1]))
            return out
        out.append(s)
    return out


def _set(name, value, at):
    node = ast.Assign([ast.Name(name, ast.Store())], ast.Constant(value))
    return ast.fix_missing_locations(ast.copy_location(node, at))
