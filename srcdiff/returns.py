"""Returns inside branches and loops, rewritten so that a function returns once, at its end.

    if abs(r) <= d:                      if abs(r) <= d:
        return 0.5 * r * r       ->          result = 0.5 * r * r
    return d * (abs(r) - 0.5 * d)        else:
                                             result = d * (abs(r) - 0.5 * d)
                                         return result

Each `return e` becomes `result = e`. The code after an `if` one of whose branches always
returns moves into its other branch; after an `if` each of whose branches may return or go
on, it goes into both. In a loop, a return also sets a flag and leaves the loop:

    for i in range(n):                   returned = False
        x = step(x)                      for i in range(n):
        if err(x) < tol:         ->          x = step(x)
            return x                         if err(x) < tol:
    return x                                     result = x
                                                 returned = True
                                                 break
                                         if returned:
                                             pass
                                         else:
                                             result = x
                                         return result

and the code after the loop runs only if the flag is not set (in an enclosing loop, the
flag leaves that loop too). A bare `return`, returns of different arities, and a return
in a `for ... else` are left for the frontend to refuse.
"""
import ast

# the code after a branch is copied into both of its arms at most this much (AST nodes)
COPY_LIMIT = 2000


def single_return(body, names):
    """`body` (a function's statements) returning once at its end, or `body` itself if it
    already does, or if its returns cannot be moved there."""
    if not any(_returns_inside(s) for s in body):
        return body
    first = next(n for s in body for n in ast.walk(s) if isinstance(n, ast.Return))
    arity = _arity(first.value)
    base = "result" if arity == 1 else "results"
    results = [names.fresh(base if arity == 1 else f"{base}_{k}") for k in range(arity)]
    flag = names.fresh("returned") if any(_returns_inside(n) for s in body for n in ast.walk(s)
                                          if isinstance(n, (ast.For, ast.While))) else None
    rewritten, returns = _Mover(results, flag).block(body, in_loop=False)
    if rewritten is None or not returns:
        return body
    value = results[0] if arity == 1 else tuple(results)
    start = [_located(ast.Assign([ast.Name(flag, ast.Store())], ast.Constant(False)), body[0])] \
        if flag else []
    return start + rewritten + [_located(ast.Return(_load(value)), body[-1])]


class _Mover:
    def __init__(self, results, flag):
        self.results, self.flag = results, flag
        self.copied = 0

    def block(self, stmts, in_loop):
        """(stmts with each return an assignment to the results, True if every path through
        them returns), or (None, False) if a return cannot be moved to the end."""
        out = []
        for i, s in enumerate(stmts):
            if isinstance(s, ast.Return):
                return self.returned(s, in_loop, out)
            if isinstance(s, ast.Raise):         # leaves as a return does
                return out + [s], True
            if not _returns_inside(s):
                out.append(s)
                continue
            if isinstance(s, ast.If):
                new, returns = self.branch(s, stmts[i + 1:], in_loop)
            elif isinstance(s, (ast.For, ast.While)) and not s.orelse:
                new, returns = self.loop(s, stmts[i + 1:], in_loop)
            else:
                return None, False
            return (None, False) if new is None else (out + new, returns)
        return out, False

    def returned(self, s, in_loop, out):
        if s.value is None or _arity(s.value) != len(self.results):
            return None, False
        new = [ast.Assign([_store(self.results)], s.value)]
        if in_loop:
            new += [ast.Assign([ast.Name(self.flag, ast.Store())], ast.Constant(True)), ast.Break()]
        return out + [_located(n, s) for n in new], True

    def branch(self, s, rest, in_loop):
        body, body_returns = self.block(s.body, in_loop)
        orelse, orelse_returns = self.block(s.orelse, in_loop)
        if body is None or orelse is None:
            return None, False
        if body_returns and not orelse_returns:
            orelse, orelse_returns = self.block(s.orelse + rest, in_loop)
        elif orelse_returns and not body_returns:
            body, body_returns = self.block(s.body + rest, in_loop)
        elif not body_returns and rest:     # either arm may return or go on: the rest in both
            self.copied += sum(1 for r in rest for _ in ast.walk(r))
            if self.copied > COPY_LIMIT:
                return None, False
            body, body_returns = self.block(s.body + rest, in_loop)
            orelse, orelse_returns = self.block(s.orelse + rest, in_loop)
        # (when both arms return, the code after the `if` never runs, as in Python)
        if body is None or orelse is None:
            return None, False
        return [_located(ast.If(s.test, body or [ast.Pass()], orelse), s)], \
            body_returns and orelse_returns

    def loop(self, s, rest, in_loop):
        """The loop with its returns leaving it, then the rest of the block if none did (or,
        in an enclosing loop, leaving that one too if one did)."""
        body, _ = self.block(s.body, in_loop=True)
        after, after_returns = self.block(rest, in_loop)
        if body is None or after is None:
            return None, False
        new = ast.For(s.target, s.iter, body, []) if isinstance(s, ast.For) \
            else ast.While(s.test, body, [])
        if _endless(s):     # `while True:` left only by its returns: nothing after it runs
            return ([_located(new, s)], True) if not in_loop else (None, False)
        leave = ast.Break() if in_loop else ast.Pass()
        check = ast.If(ast.Name(self.flag, ast.Load()), [leave], after)
        if not after and not in_loop:
            return [_located(new, s)], False
        return [_located(new, s), _located(check, s)], after_returns


def _endless(loop):
    """True for `while True:` (or another constant true test) with no `break` of its own."""
    if not (isinstance(loop, ast.While) and isinstance(loop.test, ast.Constant) and loop.test.value):
        return False
    return not any(isinstance(n, ast.Break) for n in _own_statements(loop.body))


def _own_statements(stmts):
    """The statements of a loop body, nested `if`s included, but not those of inner loops."""
    for s in stmts:
        yield s
        if isinstance(s, ast.If):
            yield from _own_statements(s.body + s.orelse)


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
