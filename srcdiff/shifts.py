"""Shifts that cancel: `m + log(sum(exp(a - m)))` does not depend on m.

The stable log-sum-exp subtracts a shift m (usually the max) inside the exp and
adds it back outside the log. Its derivative in m is 1 - sum(softmax(a)) = 0, so
m's adjoint is exactly zero and the reverse sweep may leave m inactive: no adjoint,
no tie record for a max, no tape entry for m. (JAX's logsumexp stops the gradient
at its shift for the same reason.) Two forms are recognised, for a scalar m
whose every differentiable use is one of them:

- vectorised: `m + log(sum(exp(a - m)))`, with a full sum;
- a loop: `s = 0.0`, then `s += exp(a_k - m)` (in loops and branches), then
  `m + log(s)`, with s read nowhere else.

m's assignments, then its uses, must sit in the block that holds `m + log(...)`, in
that order, so each exp is shifted by the same m that is added back.
"""
from .graph import Const, Op, uses_of, walk
from .patterns import blocks
from .rules import NON_DIFFERENTIABLE


def cancelling_shifts(graph, tys):
    """Scalar names whose adjoint is zero because they cancel in a log-sum-exp."""
    defs, readers = {}, {}
    for stmt, _ in walk(graph.body):
        if isinstance(stmt, Op):
            defs.setdefault(stmt.out if stmt.out is not None else stmt.args[0], []).append(stmt)
        for a in set(uses_of(stmt)):
            readers.setdefault(a, []).append(stmt)
    found = set()
    for name, made in defs.items():
        ty = tys.get(name)
        if ty is None or not ty.is_float or ty.ndim or any(op.out != name for op in made):
            continue
        if _cancels(name, made, graph, defs, readers):
            found.add(name)
    return found


def _cancels(m, made, graph, defs, readers):
    if not all(isinstance(op, Op) for op in readers.get(m, [])):
        return False                     # also read by a loop bound, a test or the return
    used = [op for op in readers.get(m, []) if op.gate not in NON_DIFFERENTIABLE]   # comparisons: no adjoint
    if any(op.args.count(m) != 1 for op in used):
        return False
    added = [op for op in used if op.gate == "add"]
    shifted = [op for op in used if op.gate == "sub" and op.args[1] == m]
    if len(added) != 1 or len(added) + len(shifted) != len(used):
        return False
    back = added[0]
    log = _single(_other(back, m), defs, readers, "log")
    if log is None:
        return False
    inside = log.args[0]
    summed = _single(inside, defs, readers, "sum")
    if summed is not None and summed.params.get("axis") is None:
        exps = [_single(summed.args[0], defs, readers, "exp")]
        chain = [summed]
    else:
        exps, chain = _accumulated(inside, log, defs, readers)
    if exps is None or None in exps:
        return False
    subs = [_single(e.args[0], defs, readers, "sub") for e in exps]
    if None in subs or sorted(map(id, subs)) != sorted(map(id, shifted)):
        return False
    return _in_order(graph, made, chain, log, back, subs + exps)


def _other(op, name):
    a, b = op.args
    return b if a == name else a


def _single(name, defs, readers, gate):
    """The op of `gate` that alone assigns `name`, when one op reads `name`, once; or None."""
    if not isinstance(name, str):
        return None
    made, read = defs.get(name, []), readers.get(name, [])
    if len(made) != 1 or made[0].gate != gate or made[0].out != name or len(read) != 1 \
            or not isinstance(read[0], Op) or read[0].args.count(name) != 1:
        return None
    return made[0]


def _accumulated(s, log, defs, readers):
    """([exp ops], [s's ops]) for `s = 0.0; s += exp(...)...` read only by `log`, or (None, None)."""
    made = defs.get(s, [])
    starts = [op for op in made if op.gate == "copy" and op.args == (Const(0.0),)]
    adds = [op for op in made if op.gate == "add" and op.args.count(s) == 1]
    if len(starts) != 1 or len(starts) + len(adds) != len(made) or not adds:
        return None, None
    if sorted(map(id, readers.get(s, []))) != sorted(map(id, adds + [log])):
        return None, None                # read by the return, a test or another op too
    exps = [_single(_other(op, s), defs, readers, "exp") for op in adds]
    return exps, starts + adds


def _in_order(graph, made, chain, log, back, terms):
    """Inside the block that holds `m + log(...)`: m's assignments, then its uses, with s
    started before its updates and the log after them."""
    block = next((b for b in blocks(graph.body) if _top(b, back)), None)
    if block is None or not _top(block, chain[0]):
        return False
    place = _places(block)
    if not all(id(op) in place for op in made + chain + terms + [log]):
        return False
    uses = [place[id(op)] for op in terms + [back]]
    start, logged = place[id(chain[0])], place[id(log)]
    return (max(place[id(op)] for op in made) < min(uses) and max(uses) == place[id(back)]
            and all(start < place[id(op)] < logged for op in chain[1:]) and logged <= place[id(back)])


def _places(block):
    """id of every op inside `block` (nested ones too) -> the position of its top statement."""
    place = {}
    for k, stmt in enumerate(block):
        for op, _ in walk([stmt]):
            place[id(op)] = k
    return place


def _top(block, op):
    return any(stmt is op for stmt in block)
