"""Aliasing: where NumPy shares one array between two names.

A slice `b[0:2]`, `b.T`, `b.reshape(...)` and a plain `r = b` share memory with `b`;
an element write `b[i] = v` and `a += v` on an array change that memory in place.
srcdiff gives every name its own value, so a name read after the array it shares was
changed in place through another name would be differentiated as a different
function. `check_aliasing` follows which names may share data, through branches
and loops, rejects such reads (and writes that reach a differentiated argument),
and returns every name that may hold an array written in place.
"""
from .errors import SrcdiffError
from .graph import For, If, Op, Return, While, names_in, walk

STORES = {"store", "store_add", "store_sub"}
SHARING_GATES = {"index", "transpose", "reshape", "copy", "assigned"}


def check_aliasing(graph, tys, wrt_names):
    """Names that may hold an array changed in place; raises SrcdiffError on an unsafe read."""
    tracker = Tracker(graph, tys, wrt_names)
    tracker.block(graph.body, State(frozenset(), {}))
    return tracker.written


class State:
    """Which pairs of names may share data, and which names are stale (changed behind their
    back, by a write through another name)."""

    def __init__(self, pairs, stale):
        self.pairs, self.stale = pairs, stale

    def copy(self):
        return State(self.pairs, dict(self.stale))

    def join(self, other):
        return State(self.pairs | other.pairs, {**other.stale, **self.stale})

    def same(self, other):
        return self.pairs == other.pairs and self.stale.keys() == other.stale.keys()

    def sharing(self, name):
        """The other names that may share data with `name`."""
        return {n for pair in self.pairs if name in pair for n in pair if n != name}

    def rebind(self, name, source=None):
        """`name` now holds a new array, or (with `source`) the array `source` holds."""
        pairs = {p for p in self.pairs if name not in p}
        if source is not None and source != name:
            pairs |= {frozenset((name, n)) for n in self.sharing(source) | {source} if n != name}
        self.pairs = frozenset(pairs)
        self.stale.pop(name, None)


class Tracker:
    def __init__(self, graph, tys, wrt_names):
        self.graph, self.tys, self.wrt = graph, tys, set(wrt_names)
        self.written = set()

    # ---- regions ----------------------------------------------------------------------
    def block(self, block, state):
        for stmt in block:
            state = REGIONS[type(stmt)](self, stmt, state)
        return state

    def op(self, op, state):
        for name in names_in(op.args):
            self.check_read(name, op, state)
        if op.gate in STORES:
            self.changed(op.args[0], op, state)
            return state
        out = op.out
        if out is None or not self.tys[out].is_array:
            return state
        if op.params.get("inplace"):
            # the old name stays readable when it is a caller's array changed in a helper
            self.changed(op.args[0], op, state, keep=(out,), itself=op.args[0] != out)
        source = op.args[0] if op.args else None
        shares = op.gate in SHARING_GATES and isinstance(source, str) and self.tys[source].is_array \
            and not self.picked(op)
        state.rebind(out, source if shares else None)
        return state

    def picked(self, op):
        """True for `x[idx]` and `x[mask]`: NumPy copies the picked entries."""
        return op.gate == "index" and any(
            isinstance(a, str) and self.tys[a].ndim for a in op.args[1:])

    def for_loop(self, loop, state):
        for bound in names_in((loop.start, loop.stop)):
            self.check_read(bound, loop, state)
        return self.fixpoint(lambda s: self.block(loop.body, s), state)

    def while_loop(self, loop, state):
        state = self.block(loop.test_block, state)
        return self.fixpoint(lambda s: self.block(loop.test_block, self.block(loop.body, s)), state)

    def branch(self, branch, state):
        then = self.block(branch.body, state.copy())
        orelse = self.block(branch.orelse, state.copy())
        return then.join(orelse)

    def ret(self, ret, state):
        for name in names_in([ret.value]):
            self.check_read(name, ret, state)
        return state

    def fixpoint(self, body, state):
        while True:
            after = state.join(body(state.copy()))
            if after.same(state):
                return after
            state = after

    # ---- reads and writes -------------------------------------------------------------
    def changed(self, name, op, state, keep=(), itself=False):
        """`name`'s array changed in place by `op`: the other names sharing it (and, with
        `itself`, `name`) are stale."""
        sharing = state.sharing(name)
        for param in sorted(self.wrt & (sharing | {name})):
            user = self.user(name)
            via = "" if user == param else f" through `{user}`, which shares its data"
            raise SrcdiffError(f"the function writes into `{param}`{via}, which is differentiated",
                               op.where, hint=f"work on a copy: `{param} = {param}.copy()` at the "
                               "top of the function (writing into it would also change the "
                               "caller's array)")
        self.written |= sharing | {name}
        for other in (sharing | ({name} if itself else set())) - set(keep):
            state.stale[other] = (name, op)

    def check_read(self, name, stmt, state):
        if name not in state.stale:
            return
        writer, op = state.stale[name]
        user, changed = self.user(name), self.user(writer)
        if name == writer:
            again = "in the next iteration of the loop around the call" \
                if repr(stmt.where) == repr(op.where) else "here"
            raise SrcdiffError(
                f"`{user}` was changed in place at {op.where!r}, inside a function it was "
                f"passed to, and is read again {again}; srcdiff does not follow that change",
                stmt.where, hint=f"in that function write `{changed} = {changed} + ...` and "
                                 f"return it; bind the result where it is called (`{user} = ...`)")
        raise SrcdiffError(
            f"`{user}` shares its data with `{changed}`, which line {op.where.line} changed in "
            f"place; in NumPy `{user}` sees that change, and srcdiff does not follow shared data",
            stmt.where, hint=self.hint(user, changed, op, self.view_between(name, writer)))

    def view_between(self, a, b):
        """(view, base) when one of IR names a, b is a slice, transpose or reshape of the
        other (through names for it), else None."""
        for view, base in ((a, b), (b, a)):
            source = view
            for _ in range(32):
                made = next((o for o, _ in walk(self.graph.body) if isinstance(o, Op)
                             and o.out == source and o.gate in SHARING_GATES), None)
                second_name = made is not None and made.gate in ("copy", "assigned")
                if made is None or not isinstance(made.args[0], str) \
                        or second_name and source == view:      # a second name, not a view
                    break
                source = made.args[0]
                if source == base:
                    return self.user(view), self.user(base)
        return None

    @staticmethod
    def hint(user, changed, op, view=None):
        if view is not None and view[0] == changed:
            view, base = view
            return (f"write into `{base}` itself (`{base}[...] = ...`) rather than through "
                    f"`{view}`, or, if `{base}` should not change, make `{view}` an array of its "
                    f"own where it is created: add `.copy()` there")
        if view is not None:
            view, base = view
            return (f"read `{base}` itself after the change, or, for the values from before it, "
                    f"make `{view}` an array of its own where it is created: add `.copy()` there")
        if op.params.get("inplace"):
            return (f"write `{changed} = {changed} + ...` (a new array) instead of `{changed} += ...`,"
                    f" or make `{user}` a copy: `{user} = {changed}.copy()`")
        return f"make `{user}` an array of its own where it is created: add `.copy()` there"

    def user(self, name):
        origin = self.graph.names.origin
        while name in origin:
            name = origin[name]
        return name


REGIONS = {Op: Tracker.op, For: Tracker.for_loop, While: Tracker.while_loop, If: Tracker.branch,
           Return: Tracker.ret}
