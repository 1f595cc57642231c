"""Arguments passed as None: `if w is None:` decided for each call signature.

A function with a default `w=None` is specialised per call signature, as for any
argument type: where `w` is None, `w is None` is True, and an `if` on it keeps only
the branch that runs (the other may use `w` as an array). The statements are walked in
order, following which names hold None; reading one anywhere else is an error naming
the line.
"""
from .errors import SrcdiffError
from .graph import Const, If, Op

NONE_TESTS = {"is_none": True, "is_not_none": False}


def fold_none_tests(graph, arg_types):
    """Fold, in place, the None tests of `graph` for arguments of these types, and keep
    only the branches of `if`s on them that run."""
    nones = {p for p, t in zip(graph.params, arg_types) if t.dtype == "none"}
    if nones or any(op.gate in NONE_TESTS for op in _ops(graph.body)):
        graph.body[:] = _block(graph.body, nones, {})


def _block(block, nones, known):
    out = []
    for stmt in block:
        if isinstance(stmt, Op):
            out.extend(_op(stmt, nones, known))
        elif isinstance(stmt, If) and isinstance(stmt.test, str) and stmt.test in known:
            out.extend(_block(stmt.body if known[stmt.test] else stmt.orelse, nones, known))
        elif isinstance(stmt, If):
            after_body, after_orelse = set(nones), set(nones)
            stmt.body = _block(stmt.body, after_body, known)
            stmt.orelse = _block(stmt.orelse, after_orelse, known)
            nones |= after_body | after_orelse
            out.append(stmt)
        else:
            for attr in ("test_block", "body"):
                if isinstance(getattr(stmt, attr, None), list):
                    setattr(stmt, attr, _block(getattr(stmt, attr), nones, known))
            out.append(stmt)
    return out


def _op(op, nones, known):
    """The statements `op` becomes: a None test folded to a constant, a copy of None dropped
    (its name now holds None), or `op` itself."""
    reads = [a for a in op.args if isinstance(a, str) and a in nones]
    if op.gate in NONE_TESTS:
        value = bool(reads) == NONE_TESTS[op.gate]
    elif op.gate == "copy" and reads:
        nones.add(op.out)
        return []
    elif reads:
        raise SrcdiffError(f"`{reads[0]}` is None here", op.where,
                           hint=f"give `{reads[0]}` a value where it is None, e.g. `if {reads[0]} "
                                f"is None: {reads[0]} = ...`, or pass an array")
    elif op.gate in ("copy", "not") and op.args[0] in known:
        value = known[op.args[0]] != (op.gate == "not")
    elif op.gate in ("and", "or") and all(a in known for a in op.args if isinstance(a, str)):
        values = [known[a] if isinstance(a, str) else bool(a.value) for a in op.args]
        value = all(values) if op.gate == "and" else any(values)
    else:
        nones.discard(op.out)
        return [op]
    nones.discard(op.out)
    known[op.out] = value
    return [Op(op.out, "copy", (Const(value),), {}, op.where)]


def _ops(block):
    from .graph import walk
    return [s for s, _ in walk(block) if isinstance(s, Op)]
