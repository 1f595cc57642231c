"""Returns inside `if` branches, rewritten so that a function returns once, at its end.

    if abs(r) <= d:                      if abs(r) <= d:
        return 0.5 * r * r       ->          result = 0.5 * r * r
    return d * (abs(r) - 0.5 * d)        else:
                                             result = d * (abs(r) - 0.5 * d)
                                         return result

The code after an `if` one of whose branches always returns moves into its other branch,
and each `return e` becomes `result = e`. A return in a loop, or in a branch whose other
branch may either return or go on, is left for the frontend to refuse.
"""
import ast


def single_return(body, names):
    """`body` (a function's statements) returning once at its end, or `body` itself if it
    already does, or if its returns cannot be moved there."""
    if not any(_returns_inside(s) for s in body):
        return body
    first = next(n for s in body for n in ast.walk(s) if isinstance(n, ast.Return))
    arity = _arity(first.value)
    base = "result" if arity == 1 else "results"
    results = [names.fresh(base if arity == 1 else f"{base}_{k}") for k in range(arity)]
    rewritten, returns = _restructured(body, results)
    if rewritten is None or not returns:
        return body
    value = results[0] if arity == 1 else tuple(results)
    return rewritten + [_located(ast.Return(_load(value)), body[-1])]


def _restructured(stmts, results):
    """(stmts with each return an assignment to `results`, True if every path through them
    returns), or (None, False) if a return cannot be moved to the end."""
    out = []
    for i, s in enumerate(stmts):
        if isinstance(s, ast.Return):
            if s.value is None or _arity(s.value) != len(results):
                return None, False
            return out + [_located(ast.Assign([_store(results)], s.value), s)], True
        if isinstance(s, ast.If) and _returns_inside(s):
            body, body_returns = _restructured(s.body, results)
            orelse, orelse_returns = _restructured(s.orelse, results)
            if body is None or orelse is None:
                return None, False
            rest = stmts[i + 1:]
            if body_returns and not orelse_returns:
                orelse, orelse_returns = _restructured(s.orelse + rest, results)
            elif orelse_returns and not body_returns:
                body, body_returns = _restructured(s.body + rest, results)
            elif not body_returns or rest:
                return None, False        # a branch may return or go on; or code never runs
            if body is None or orelse is None:
                return None, False
            new = _located(ast.If(s.test, body or [ast.Pass()], orelse), s)
            return out + [new], body_returns and orelse_returns
        if isinstance(s, (ast.For, ast.While)) and _returns_inside(s):
            return None, False
        out.append(s)
    return out, False


def _returns_inside(stmt):
    """True if `stmt` is a compound statement with a `return` inside."""
    return not isinstance(stmt, ast.Return) and any(
        isinstance(n, ast.Return) for n in ast.walk(stmt))


def _arity(value):
    return len(value.elts) if isinstance(value, ast.Tuple) else 1 if value is not None else 0


def _store(results):
    if len(results) == 1:
        return ast.Name(results[0], ast.Store())
    return ast.Tuple([ast.Name(r, ast.Store()) for r in results], ast.Store())


def _load(value):
    if isinstance(value, tuple):
        return ast.Tuple([ast.Name(r, ast.Load()) for r in value], ast.Load())
    return ast.Name(value, ast.Load())


def _located(node, at):
    return ast.fix_missing_locations(ast.copy_location(node, at))
