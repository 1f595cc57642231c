"""Adjoints handed over instead of added: `d = zeros; ...; d += c` becomes `d = c`.

Undoing `u, v = v, u` (or any `x = y` of arrays) adds the adjoint of the name it bound
into the adjoint of the one it read, then resets the first: in a loop, an allocation
and a whole-array addition per name and iteration. Where the receiving adjoint `d` was
just reset to zeros, and `c` is an adjoint whose array nothing else can hold and which
is bound to a new array before it is read again, `d` can take `c`'s array as it is.

`c` qualifies when every mention of it in the function is an in-place update of it
(`c += ...`, `c[k] += ...`), a read that copies (an operand of arithmetic, or an entry
`c[k]` of a vector), or a binding to a new array (`np.zeros(...)`, arithmetic) or to the
array of another such adjoint that is bound anew right after (`dt14 = du; du = ...`) — so
no other name ever shares its array (a helper such as `unbroadcast_to` may return its
argument) — and, after `d += c` in its block, the first statement that mentions it binds
it anew. If none does, every mention must lie in that block and its first one there binds
it, so a loop's next iteration binds it again before reading it.
"""
import ast

from .optimize import _first_use, _is_add_to, _mentions, _zeroed_name, nested_blocks


def move_adjoints(stmts, everything, ranks):
    """Rewrite, in place, every block of `stmts` (the backward); `everything` is the whole
    function body (for the mentions of a name), `ranks` the ranks of adjoint arrays."""
    for inner in nested_blocks(stmts):
        move_adjoints(inner, everything, ranks)
    i = 0
    while i < len(stmts):
        name = _zeroed_name(stmts[i])
        j = _first_use(stmts, i + 1, name) if name else None
        if j is not None and _is_add_to(stmts[j], name) and isinstance(stmts[j].value, ast.Name):
            source = stmts[j].value.id
            if source != name and _never_shared(source, everything, stmts[j], ranks) \
                    and _bound_before_read(source, stmts, j, everything):
                stmts[j] = ast.Assign([ast.Name(name, ast.Store())], ast.Name(source, ast.Load()))
                del stmts[i]
                continue
        i += 1


def _never_shared(name, everything, handover, ranks, seen=()):
    """True if every mention of `name` binds it to an array of its own, updates it in place,
    or reads a copy."""
    parents = {id(child): node for stmt in everything for node in ast.walk(stmt)
               for child in ast.iter_child_nodes(node)}
    for stmt in everything:
        for node in ast.walk(stmt):
            if not (isinstance(node, ast.Name) and node.id == name) or node is handover.value:
                continue
            parent = parents.get(id(node))
            if isinstance(node.ctx, ast.Store) and isinstance(parent, ast.Assign):
                if _owns(parent, everything, parents, ranks, seen + (name,)):
                    continue
                return False
            if isinstance(parent, ast.AugAssign) or _only_returned(parent, everything):
                continue
            if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
                continue                    # a write into its own entries
            if isinstance(parent, (ast.BinOp, ast.UnaryOp)):
                continue
            if isinstance(parent, ast.Subscript) and parent.value is node \
                    and ranks.get(name) == 1 and not _has_slice(parent.slice):
                continue
            return False
    return True


def _owns(binding, everything, parents, ranks, seen):
    """True if `binding` (`c = value`) gives c a new array, or the array of an adjoint that
    itself never shares and is bound anew by the next statement that mentions it."""
    value = binding.value
    if isinstance(value, (ast.BinOp, ast.UnaryOp)) or (
            isinstance(value, ast.Call) and ast.unparse(value.func) in NEW_ARRAYS):
        return True
    if not isinstance(value, ast.Name) or value.id in seen:
        return False
    block = parents.get(id(binding))
    stmts = everything if block is None else next(
        (b for b in _blocks_of(block) if binding in b), None)
    if stmts is None:
        return False
    after = _first_use(stmts, stmts.index(binding) + 1, value.id)
    return after is not None and _binds(stmts[after], value.id) \
        and _never_shared(value.id, everything, binding, ranks, seen)


def _only_returned(assignment, everything):
    """True for `g = c` where `g` is read only by the `return` (the gradient handed back)."""
    if not (isinstance(assignment, ast.Assign) and len(assignment.targets) == 1
            and isinstance(assignment.targets[0], ast.Name)):
        return False
    target = assignment.targets[0].id
    returned = sum(_count(s, target) for s in everything if isinstance(s, ast.Return))
    return returned and sum(_count(s, target) for s in everything) == returned + 1


NEW_ARRAYS = {"np.zeros", "np.zeros_like", "np.empty", "np.ones"}


def _blocks_of(node):
    return [getattr(node, field) for field in ("body", "orelse")
            if isinstance(getattr(node, field, None), list)]


def _has_slice(index):
    return any(isinstance(n, ast.Slice) for n in ast.walk(index))


def _bound_before_read(name, stmts, j, everything):
    """True if `name` is bound anew before any read after statement j of `stmts`."""
    after = _first_use(stmts, j + 1, name)
    if after is not None:
        return _binds(stmts[after], name)
    inside = sum(_count(s, name) for s in stmts)
    if inside != sum(_count(s, name) for s in everything):
        return False
    first = _first_use(stmts, 0, name)
    return first is not None and _binds(stmts[first], name)


def _binds(stmt, name):
    """`name = value`, value not reading name."""
    return isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
        and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == name \
        and not _mentions(stmt.value, name)


def _count(stmt, name):
    return sum(isinstance(n, ast.Name) and n.id == name for n in ast.walk(stmt))
