"""Graph rewrites that give a written-out formula its fused gate rule.

`z - log(sum(exp(z), axis, keepdims=True))` becomes `log_softmax(z, axis)`, whose
rule is the fused `g - softmax(z) * sum(g)` (the seed's `softmax(z) - y` for a
cross-entropy loss). A preceding stabilising shift `z = z - max(z, axis,
keepdims=True)` is dropped: log_softmax is shift-invariant and computed stably.

`x * x * x` (a chain of one factor) becomes `power(x, 3)`, whose rule is the
power rule `3 * g * x * x` rather than the chain rule through each product.
"""
from .graph import For, If, Op, While, uses_of, walk


def fuse_log_softmax(graph):
    """Rewrite every log-softmax written out in the graph's blocks (in place)."""
    uses = use_counts(graph)
    for block in blocks(graph.body):
        for i, op in enumerate(block):
            match = _match(block, i, uses)
            if match:
                _rewrite(block, op, match, uses)


def _match(block, i, uses):
    """The (exp, sum, log) ops feeding `logp = z - log(sum(exp(z)))` at block[i], or None."""
    sub = block[i]
    if not (isinstance(sub, Op) and sub.gate == "sub" and isinstance(sub.args[1], str)):
        return None
    defs = {op.out: op for op in block[:i] if isinstance(op, Op)}
    log = defs.get(sub.args[1])
    total = defs.get(log.args[0]) if log is not None and log.gate == "log" else None
    exp = defs.get(total.args[0]) if total is not None and total.gate == "sum" else None
    if exp is None or exp.gate != "exp" or exp.args[0] != sub.args[0]:
        return None
    if _written(block[_position(block, exp) + 1:i], sub.args[0]):
        return None                      # `z` changed between exp(z) and z - log(...)
    if not total.params["keepdims"] or total.params["axis"] is None:
        return None
    if any(uses.get(op.out, 0) != 1 for op in (exp, total, log)):
        return None
    return exp, total, log


def _rewrite(block, sub, match, uses):
    exp, total, log = match
    source = sub.args[0]
    shift = next((op for op in block if isinstance(op, Op) and op.out == source), None)
    if shift is not None and _is_max_shift(shift, block, total.params["axis"]) and uses.get(source) == 2 \
            and uses.get(shift.args[1]) == 1 \
            and not _written(block[_position(block, shift) + 1:_position(block, sub)], shift.args[0]):
        source = shift.args[0]
        block.remove(next(op for op in block if isinstance(op, Op) and op.out == shift.args[1]))
        block.remove(shift)
    for op in match:
        block.remove(op)
    sub.gate, sub.args = "log_softmax", (source,)
    sub.params = {"axis": total.params["axis"], "keepdims": False}


def _position(block, stmt):
    return next(k for k, other in enumerate(block) if other is stmt)


def _written(stmts, name):
    """Whether `stmts` (nested blocks included) rebind `name` or store into it."""
    return any(isinstance(op, Op) and (op.out == name or (op.out is None and op.args[:1] == (name,)))
               for op, _ in walk(stmts))


def fuse_powers(graph):
    """Rewrite every product chain `x * x * ... * x` in the graph's blocks as one power op."""
    uses = use_counts(graph)
    for block in blocks(graph.body):
        i = 1
        while i < len(block):
            inner, outer = block[i - 1], block[i]
            if _extends_power(inner, outer, uses):
                outer.gate, outer.args = "power", (inner.args[0],)
                outer.params = {"n": _degree(inner) + 1}
                del block[i - 1]
            else:
                i += 1


def _extends_power(inner, outer, uses):
    """Whether `outer` multiplies the power `inner` (used nowhere else) by its base once more."""
    if not (isinstance(inner, Op) and isinstance(outer, Op) and outer.gate == "mul"):
        return False
    if _degree(inner) is None or uses.get(inner.out) != 1:
        return False
    base = inner.args[0]
    return sorted(outer.args, key=str) == sorted((inner.out, base), key=str)


def _degree(op):
    """n for an op computing `x ** n` as a product of one name, else None."""
    if op.gate == "power":
        return op.params["n"]
    if op.gate == "mul" and isinstance(op.args[0], str) and op.args == (op.args[0], op.args[0]):
        return 2
    return None


def _is_max_shift(op, block, axis):
    if op.gate != "sub" or not isinstance(op.args[1], str):
        return False
    m = next((o for o in block if isinstance(o, Op) and o.out == op.args[1]), None)
    return (m is not None and m.gate == "max" and m.args[0] == op.args[0]
            and m.params["keepdims"] and m.params["axis"] == axis
            and not _written(block[_position(block, m) + 1:_position(block, op)], op.args[0]))


def use_counts(graph):
    counts = {}
    for stmt, _ in walk(graph.body):
        for a in uses_of(stmt):
            counts[a] = counts.get(a, 0) + 1
    return counts


def blocks(block):
    yield block
    for stmt in block:
        for child in ([stmt.body] if isinstance(stmt, For) else
                      [stmt.test_block, stmt.body] if isinstance(stmt, While) else
                      [stmt.body, stmt.orelse] if isinstance(stmt, If) else []):
            yield from blocks(child)
