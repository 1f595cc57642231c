"""Names read where they may not be set yet, and the flags that catch it at run time.

Python raises UnboundLocalError when a name set only in a branch that did not run (or in
a loop that ran no iteration) is read. numba instead reads a zero, and the backward's
placeholder for an array is an empty array, so both would go on silently. For each such
read, the body gets a flag, `y_is_set = False` at the top and `y_is_set = True` after every
assignment of `y`; the frontend then reads `y` through `assigned(y, y_is_set)`, which
raises as Python does.
"""
import ast

from .source import assigned_names

UNREACHABLE = None     # the names set after a `break`/`continue`: every name (no path goes on)


def possibly_unset_reads(body, bound):
    """{id(node): name} for the reads in `body` of a local name that may not be set on some
    path to them, with the names `bound` set on entry."""
    local = assigned_names(body) - set(bound)
    found = {}

    def read(node, done):
        """`done` and the names read in `node`: read once, a name is set (or Python raised)."""
        done = set(done)
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in local \
                    and n.id not in done:
                found[id(n)] = n.id
                done.add(n.id)
        return done

    def block(stmts, done):
        for s in stmts:
            done = statement(s, done)
        return done

    def statement(s, done):
        if done is UNREACHABLE:
            return done
        if isinstance(s, ast.If):
            done = read(s.test, done)
            return both(block(s.body, done), block(s.orelse, done))
        if isinstance(s, (ast.For, ast.While)):
            done = read(s.iter if isinstance(s, ast.For) else s.test, done)
            inside = done | (targets(s.target) if isinstance(s, ast.For) else set())
            block(s.body, inside)
            return done          # the loop may run no iteration
        if isinstance(s, (ast.Break, ast.Continue)):
            return UNREACHABLE
        if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name) \
                and s.target.id in local and s.target.id not in done:
            found[id(s.target)] = s.target.id
        return read(s, done) | assigned_names([s])

    block(body, set(bound))
    return found


def both(a, b):
    if a is UNREACHABLE:
        return b
    if b is UNREACHABLE:
        return a
    return a & b


def targets(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def with_set_flags(body, flags):
    """`body` with `flag = False` at the top and `flag = True` after each assignment of a
    name in `flags` ({name: flag}); a loop over such a name sets its flag in its body."""
    start = [_set(flag, False, body[0]) for flag in flags.values()]
    return start + _flagged(body, flags)


def _flagged(stmts, flags):
    out = []
    for s in stmts:
        if isinstance(s, (ast.For, ast.While, ast.If)):
            s.body = _flagged(s.body, flags)
            s.orelse = _flagged(s.orelse, flags)
            if isinstance(s, ast.For):
                s.body = [_set(flags[n], True, s) for n in sorted(targets(s.target) & flags.keys())] \
                    + s.body
            out.append(s)
            continue
        out.append(s)
        out += [_set(flags[n], True, s) for n in sorted(assigned_names([s]) & flags.keys())]
    return out


def _set(flag, value, at):
    """`flag = value`, placed at the line of `at`."""
    stmt = ast.Assign([ast.Name(flag, ast.Store())], ast.Constant(value))
    for node in ast.walk(stmt):
        ast.copy_location(node, at)
    return stmt
