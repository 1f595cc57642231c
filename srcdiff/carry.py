"""Arrays a loop carries from one iteration to the next, taped once instead of twice.

In `for t in range(T): h = np.tanh(h @ W + b)` the rule of `@` reads `h` as the
iteration enters (a copy `start = h`) and the rule of `tanh` reads its output
`end`, which `h` is bound to last. Both are taped every iteration, yet `start` of
one iteration is `end` of the one before. So only `start` is taped per iteration,
plus `h` once after the loop; the backward pops that final `h` before its reverse
loop and, in each iteration, takes `end` from the `start` it popped the iteration
before (`end = start`, then pop `start`).
"""
from dataclasses import dataclass

from .aliases import STORES
from .graph import For, Op, walk


@dataclass(frozen=True)
class Carry:
    name: str      # the loop-carried array
    start: str     # its copy as an iteration enters (taped)
    end: str       # the value it is bound to last in the iteration (not taped)


def carried_arrays(graph, plan, tys):
    """{id(loop body): [Carry]} for the `for` loops without `break` of `graph`."""
    found = {}
    for stmt, _ in walk(graph.body):
        if isinstance(stmt, For) and not stmt.exit:
            carries = _carries(stmt.body, plan.taped.get(id(stmt.body), []), tys)
            if carries:
                found[id(stmt.body)] = carries
    return found


def _carries(body, taped, tys):
    arrays = {n for n in taped if tys[n].is_array}
    carries, ends = [], set()
    for pos, stmt in enumerate(body):
        if not (isinstance(stmt, Op) and stmt.gate == "copy_array" and stmt.out in arrays):
            continue
        name = stmt.args[0]
        if not isinstance(name, str) or not tys[name].is_array \
                or _binds_or_writes(body[:pos], name):
            continue
        end = _last_value(body, pos, name)
        if end in arrays and end not in ends and tys[end].ndim == tys[stmt.out].ndim:
            carries.append(Carry(name, stmt.out, end))
            ends.add(end)
    return carries


def _binds_or_writes(stmts, name):
    """True if `stmts` may change what `name` holds: they rebind it or write into any array."""
    return any(isinstance(s, Op) and (s.out == name or s.gate in STORES) for s, _ in walk(stmts))


def _last_value(body, after, name):
    """The name `name` is bound to by the last statement of `body` that binds it, if that is a
    top-level copy after position `after` and nothing writes into an array after it (`h[:] =
    0.5 * h` would make the next iteration's start differ from it); None otherwise."""
    binding = [pos for pos, stmt in enumerate(body) if _binds(stmt, name)]
    if not binding or binding[-1] <= after or _binds_or_writes(body[binding[-1] + 1:], name):
        return None
    last = body[binding[-1]]
    if isinstance(last, Op) and last.gate == "copy" and last.out == name \
            and isinstance(last.args[0], str):
        return last.args[0]
    return None


def _binds(stmt, name):
    return any(isinstance(s, Op) and s.out == name for s, _ in walk([stmt]))
