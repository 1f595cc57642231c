"""Analysis of a typed graph before the reverse sweep.

`analyse(graph, tys, wrt)` returns a `Plan` stating, for one call signature:
- which values are active (depend on `wrt` and reach the result);
- which names are *mutable* (assigned more than once, loop-carried, or arrays
  written in place) and which are single assignments;
- which values the backward reads, and for those defined inside loops whether
  the reverse sweep recomputes them (cheap, pure, inputs available) or pops
  them from the tape (everything else);
- which forward statements the gradient still has to run (the rest is dead).
It also rewrites rule inputs that are mutable into copies taken at the point of
use, so the backward never reads a variable that was overwritten since.
"""
from dataclasses import dataclass, field

from .aliases import SHARING_GATES, STORES, check_aliasing
from .carry import carried_arrays
from .fuse import ELEMENTWISE_GATES
from .graph import Const, For, If, Op, While, names_in, uses_of, walk
from .shifts import cancelling_shifts
from .rules import BROADCASTING, NON_DIFFERENTIABLE, RULES, SWEEP_GATES
from .infer import INT
from .sym import Sym

VIEW_GATES = {"index", "transpose", "dim", "size", "ndim"}


@dataclass
class Plan:
    active: set
    mutable: set
    stored_arrays: set
    needed: set
    taped: dict = field(default_factory=dict)        # block id -> [names pushed at its end]
    recomputed: dict = field(default_factory=dict)   # block id -> [ops recomputed at its reverse start]
    live: set = field(default_factory=set)           # ids of forward statements the gradient runs
    in_loop: dict = field(default_factory=dict)      # name -> True if defined inside a loop
    aliased: set = field(default_factory=set)        # ids of copies that may bind the same array
    kept: set = field(default_factory=set)           # ids of copies and views that must copy
    shape_of: dict = field(default_factory=dict)     # array read for its shape only -> dim names
    carried: dict = field(default_factory=dict)      # loop body id -> [Carry] (see carry.py)
    extremes: dict = field(default_factory=dict)     # array taped as where it equals: its max/min
    old_dims: dict = field(default_factory=dict)     # id of a rebinding op -> dims of the old value
    rebinding: dict = field(default_factory=dict)    # id of a rebinding op -> its number
    unbound: set = field(default_factory=set)        # names read for old_dims where maybe unbound
    cancelling: set = field(default_factory=set)     # log-sum-exp shifts, zero adjoint (shifts.py)


def analyse(graph, tys, wrt_names, with_value, names, same_shapes=frozenset()):
    stored = {s.args[0] for s, _ in walk(graph.body) if isinstance(s, Op) and s.gate in STORES}
    stored |= check_aliasing(graph, tys, wrt_names)
    mutable = mutable_names(graph, stored)
    shifts = cancelling_shifts(graph, tys)
    active = activity(graph, tys, wrt_names, stored, shifts)
    copy_reads(graph, tys, active, mutable, names)
    mutable = mutable_names(graph, stored)
    active = activity(graph, tys, wrt_names, stored, shifts)
    plan = Plan(active, mutable, stored, set(), cancelling=shifts)
    plan.shape_of = read_shapes(graph, tys, active, mutable, names)
    plan.old_dims, plan.rebinding, plan.unbound = old_shapes(graph, tys, active, mutable, names,
                                                            same_shapes)
    plan.needed = needed_values(graph, tys, active, plan.shape_of) \
        | {d for dims in plan.old_dims.values() for d in dims}
    plan_tape(graph, tys, plan)
    plan.carried = carried_arrays(graph, plan, tys)
    plan.extremes = taped_for_extremes(graph, tys, plan)
    plan.live = liveness(graph, plan, with_value, tys)
    plan.aliased = needless_copies(graph, plan)
    plan.kept = kept_for_the_backward(graph, tys, plan)
    return plan


# ---- which names are single assignments --------------------------------------------
def mutable_names(graph, stored):
    """Names whose value at a use is not fixed by one visible assignment."""
    defs, where_defined, uses = {}, {}, {}
    _scan(graph.body, None, defs, where_defined, uses, [0])
    mutable = set(stored)
    indices = loop_indices(graph)
    for name, count in defs.items():
        if name in indices:
            continue
        block, pos = where_defined[name]
        if count > 1 or name in graph.params and count:
            mutable.add(name)
        elif block is not None and any(not _after(u, block, pos) for u in uses.get(name, ())):
            mutable.add(name)
    return mutable


def _scan(block, parent_key, defs, where_defined, uses, counter):
    """Record defs and uses; each use is a chain of (block id, position) from the top."""
    chain_base = parent_key or ()
    for pos, stmt in enumerate(block):
        key = chain_base + ((id(block), pos),)
        for name in uses_of(stmt):
            uses.setdefault(name, []).append(key)
        for name in _stmt_defs(stmt):
            defs[name] = defs.get(name, 0) + 1
            where_defined[name] = ((chain_base, id(block)) if parent_key else None, pos)
        for child in children(stmt):
            _scan(child, key, defs, where_defined, uses, counter)


def loop_indices(graph):
    return {s.index for s, _ in walk(graph.body) if isinstance(s, For)}


def is_active_op(op, active):
    """True if `op` writes an active value (or stores into an active array)."""
    if op.gate in STORES:
        return op.args[0] in active
    return op.out in active


def _after(use_chain, block, pos):
    """True if a use lies after position `pos` of `block`, inside that block."""
    chain_base, block_id = block
    n = len(chain_base)
    if use_chain[:n] != chain_base or len(use_chain) <= n:
        return False
    use_block, use_pos = use_chain[n]
    return use_block == block_id and use_pos > pos


def _stmt_defs(stmt):
    if isinstance(stmt, Op) and stmt.out is not None:
        return [stmt.out]
    if isinstance(stmt, For):
        return [stmt.index]
    return []


def children(stmt):
    if isinstance(stmt, For):
        return [stmt.body]
    if isinstance(stmt, While):
        return [stmt.test_block, stmt.body]
    if isinstance(stmt, If):
        return [stmt.body, stmt.orelse]
    return []


# ---- activity ---------------------------------------------------------------------
def differentiable(op):
    return op.gate not in NON_DIFFERENTIABLE


def activity(graph, tys, wrt_names, stored, cancelling=frozenset()):
    """Names that depend on `wrt` and reach the result, through differentiable gates
    (`cancelling` names have a zero adjoint however they are computed: see shifts.py)."""
    ops = [s for s, _ in walk(graph.body) if isinstance(s, Op)]
    floating = {n for n, t in tys.items() if t.is_float}
    varied = set(wrt_names)
    changed = True
    while changed:
        changed = False
        for op in ops:
            target = op.args[0] if op.gate in STORES else op.out
            sources = op.args[1:2] if op.gate in STORES else op.args
            if differentiable(op) and target not in varied and target not in cancelling \
                    and target in floating and any(a in varied for a in names_in(sources)):
                varied.add(target)
                changed = True
    useful = set(names_in([graph.result]))
    changed = True
    while changed:
        changed = False
        for op in ops:
            target = op.args[0] if op.gate in STORES else op.out
            if target in useful and differentiable(op):
                sources = op.args[:2] if op.gate in STORES else (
                    op.args[:1] if op.gate == "index" else op.args)
                for a in names_in(sources):
                    if a not in useful and a in floating:
                        useful.add(a)
                        changed = True
    return varied & useful


# ---- copies of mutable values at their point of use ----------------------------------
def rule_needs(op, tys, active, shape_of=None):
    """Names whose values the adjoint rule of `op` reads (for its active inputs)."""
    inputs, output = rule_reads(op, tys, active, shape_of)
    return inputs | ({op.out} if output else set())


def rule_reads(op, tys, active, shape_of=None):
    """(input names the rule of `op` reads, whether it reads the output).

    An input read only for its shape counts as its dims `shape_of[input]` when given.
    """
    inputs, output, shaped = _reads(op, tys, active)
    for a in shaped:
        inputs |= set(shape_of[a]) if shape_of and a in shape_of else {a}
    return inputs, output


def _reads(op, tys, active):
    """(input values the rule of `op` reads, whether it reads the output, inputs whose
    shape it reads to undo broadcasting)."""
    if op.gate == "index":      # the scatter needs the positions, and the array for its shape
        return set(names_in(op.args[1:])) | ({op.args[0]} if op.args[0] in active else set()), \
            False, set()
    if op.gate in STORES:       # the slot's adjoint is fitted to the value's shape
        value = op.args[1]
        shaped = {value} if isinstance(value, str) and value in active and tys[value].is_array \
            else set()
        return set(names_in(op.args[2:])), False, shaped
    rule = RULES.get(op.gate)
    if rule is None or op.out not in active:
        return set(), False, set()
    ty = op_types(op, tys)
    probes = [Sym(f"__arg{i}") for i in range(len(op.args))]
    contributions = rule(op, ty, Sym("__g"), Sym("__z"), *probes)
    used = set()
    for arg, c in zip(op.args, contributions):
        if c is not None and isinstance(arg, str) and arg in active:
            used |= _names_in_sym(c)
    inputs = {op.args[int(n[5:])] for n in used if n.startswith("__arg")}
    inputs = {a for a in inputs if isinstance(a, str)}
    return inputs, "__z" in used, shape_references(op, ty, active)


def op_types(op, tys):
    from .gates import OpTypes
    return OpTypes([type_of(a, tys) for a in op.args], tys.get(op.out))


def shape_references(op, ty, active):
    """Inputs whose shape `reverse.fit` reads to undo broadcasting."""
    from .reverse import may_broadcast
    if op.gate not in BROADCASTING or ty.out is None or not ty.out.is_array:
        return set()
    return {a for a, t in zip(op.args, ty.args) if isinstance(a, str) and a in active
            and t.is_array and may_broadcast(t, ty)}


def _names_in_sym(sym):
    import ast
    return {n.id for n in ast.walk(sym.node) if isinstance(n, ast.Name)}


def type_of(operand, tys):
    from .infer import const_type
    return const_type(operand.value) if isinstance(operand, Const) else tys[operand]


def copy_reads(graph, tys, active, mutable, names):
    """Give rules their own copy of any mutable value they read (inserted in place)."""
    _copy_reads_block(graph.body, tys, active, mutable, names)


def _copy_reads_block(block, tys, active, mutable, names):
    out = []
    for stmt in block:
        if isinstance(stmt, Op) and is_active_op(stmt, active):
            inputs, output = rule_reads(stmt, tys, active)
            _retarget_args(stmt, inputs, tys, mutable, names, out, before=True)
            if output and stmt.out in mutable and stmt.gate not in SWEEP_GATES:
                fresh = names.temp()
                tys[fresh] = tys[stmt.out]
                original = stmt.out
                stmt.out = fresh
                active.add(fresh)
                out.append(stmt)
                out.append(Op(original, "copy", (fresh,), {}, stmt.where))
                continue
        out.append(stmt)
        for child in children(stmt):
            _copy_reads_block(child, tys, active, mutable, names)
    block[:] = out


def _retarget_args(stmt, needs, tys, mutable, names, out, before):
    replaced = {}
    args = list(stmt.args)
    first = 1 if stmt.gate in STORES or stmt.gate == "index" else 0
    for i, a in enumerate(args):
        if i < first and stmt.gate in STORES | {"index"}:
            continue
        if isinstance(a, str) and a in needs and a in mutable:
            if a not in replaced:
                fresh = names.temp()
                tys[fresh] = tys[a]
                gate = "copy_array" if tys[a].is_array else "copy"
                pos = len(out) - 1 if not before and out else len(out)
                out.insert(pos, Op(fresh, gate, (a,), {}, stmt.where))
                replaced[a] = fresh
            args[i] = replaced[a]
    stmt.args = tuple(args)


# ---- arrays inside loops read only for their shape ----------------------------------------
def read_shapes(graph, tys, active, mutable, names):
    """Give each array defined in a loop whose shape, but not value, the backward reads
    (to undo broadcasting) its dims as scalars, inserted after it: {array: dim names}.
    The tape then holds the dims, not the array."""
    values, shapes = set(), set()
    for stmt, _ in walk(graph.body):
        if isinstance(stmt, Op) and is_active_op(stmt, active):
            inputs, output, shaped = _reads(stmt, tys, active)
            values |= inputs | ({stmt.out} if output else set())
            shapes |= shaped
    shapes -= _used_in_nested_blocks(graph.body)   # their adjoint may start as zeros_like
    shape_of = {}
    for stmt, loops in walk(graph.body):
        if loops and isinstance(stmt, Op) and stmt.out in shapes - values - mutable \
                and stmt.gate not in VIEW_GATES:
            shape_of[stmt.out] = tuple(names.fresh(f"{stmt.out}_n{k}")
                                       for k in range(tys[stmt.out].ndim))
            for dim in shape_of[stmt.out]:
                tys[dim] = INT
    kept = {n for n in graph.params if n not in mutable}
    kept |= {s.out for s in graph.body if isinstance(s, Op) and s.out and s.out not in mutable}
    _insert_dims(graph.body, shape_of, tys, kept, names)
    return shape_of


def old_shapes(graph, tys, active, mutable, names, same_shapes=frozenset()):
    """({id(op): dim names}, {id(op): number}, names needing a placeholder) for the ops that
    rebind an array name without reading it (`h = xb @ W1` in a loop over minibatches), or to
    a part of itself (`h = h[1:]`), numbered in program order. Undoing one resets the name's
    adjoint to zeros shaped like the value it replaced, which may differ from the final one
    (a last, shorter minibatch). The dims are read just before the op (and taped in loops), so
    a name that may be unbound there gets an empty placeholder first. `same_shapes` are the
    numbers of the ops whose reset needs no dims (the backward's first contribution replaces
    the zeros)."""
    found, numbers, unbound, count = {}, {}, set(), [0]
    seen, bound = set(), set(graph.params)      # bound: on every path, before the statement

    def visit(block, in_loop, certain):
        out = []
        for stmt in block:
            if _rebinds_array(stmt, tys, active, mutable) and (in_loop or stmt.out in seen):
                numbers[id(stmt)] = count[0]
                count[0] += 1
                if numbers[id(stmt)] not in same_shapes:
                    found[id(stmt)] = _dims_before(stmt, tys, names, out)
                    if stmt.out not in bound:
                        unbound.add(stmt.out)
            if isinstance(stmt, Op) and stmt.out is not None:
                seen.add(stmt.out)
                if certain:
                    bound.add(stmt.out)
            out.append(stmt)
            for child in children(stmt):
                visit(child, in_loop or isinstance(stmt, (For, While)), False)
        block[:] = out

    visit(graph.body, False, True)
    return found, numbers, unbound


def _rebinds_array(stmt, tys, active, mutable):
    """True for an active op binding an array name again: to a new value (`h = xb @ W1`), or
    to a part of its old one (`h = h[1:]`)."""
    return isinstance(stmt, Op) and stmt.out in mutable and tys.get(stmt.out) is not None \
        and tys[stmt.out].is_array and is_active_op(stmt, active) \
        and (stmt.out not in names_in(stmt.args) or stmt.gate == "index")


def _dims_before(op, tys, names, out):
    """Append to `out` ops reading the dims of `op.out` (its value before `op`); their names."""
    dims = tuple(names.fresh(f"{op.out}_was_n{k}") for k in range(tys[op.out].ndim))
    for k, dim in enumerate(dims):
        tys[dim] = INT
        out.append(Op(dim, "dim", (op.out,), {"axis": k, "shape_only": True}, op.where))
    return dims


def _used_in_nested_blocks(block):
    """Names used inside a block nested in the block that defines them."""
    defined_in, used_in = {}, {}
    for b in _all_blocks(block):
        for stmt in b:
            if isinstance(stmt, Op):
                if stmt.out is not None:
                    defined_in[stmt.out] = id(b)
                for a in names_in(stmt.args):
                    used_in.setdefault(a, set()).add(id(b))
    return {n for n, blocks in used_in.items() if blocks - {defined_in.get(n)}}


def _insert_dims(block, shape_of, tys, kept, names):
    """Insert the dims of each array in `shape_of` after it: from its operands' dims when
    they are known without the operands (`kept` arrays, or dims of arrays in `shape_of`),
    so the backward recomputes them; else read off the array (and taped)."""
    out = []
    for stmt in block:
        out.append(stmt)
        if isinstance(stmt, Op) and stmt.out in shape_of:
            for k, dim in enumerate(shape_of[stmt.out]):
                out.extend(_operand_dims(stmt, k, dim, shape_of, tys, kept, names) or [
                    Op(dim, "dim", (stmt.out,), {"axis": k, "shape_only": True}, stmt.where)])
        for child in children(stmt):
            _insert_dims(child, shape_of, tys, kept, names)
    block[:] = out


def _operand_dims(op, k, dim, shape_of, tys, kept, names):
    """Ops setting `dim`, axis k of op's output, from its operands' dims, or None."""
    sources = _dim_sources(op, k, tys)
    if not sources or any(a not in kept and a not in shape_of for a, _ in sources):
        return None
    ops, dims = [], []
    for a, axis in sources:
        if a in shape_of:
            dims.append(shape_of[a][axis])
            continue
        name = names.fresh(f"{a}_n{axis}") if len(sources) > 1 else dim
        tys[name] = INT
        ops.append(Op(name, "dim", (a,), {"axis": axis, "shape_only": True}, op.where))
        dims.append(name)
    if len(dims) > 1:
        ops.append(Op(dim, "broadcast_dim", tuple(dims), {"shape_only": True}, op.where))
    return ops


def _dim_sources(op, k, tys):
    """[(operand, axis)] whose lengths broadcast to axis k of op's output (None if unknown)."""
    if op.gate == "matmul":
        a, b = op.args
        rank = (tys[a].ndim, tys[b].ndim) if isinstance(a, str) and isinstance(b, str) else None
        return {(1, 2): [(b, 1)], (2, 1): [(a, 0)], (2, 2): [(a, 0), (b, 1)][k:k + 1]}.get(rank)
    if op.gate not in ELEMENTWISE_GATES:
        return None
    ndim = tys[op.out].ndim
    return [(a, k - (ndim - tys[a].ndim)) for a in names_in(op.args)
            if tys[a].is_array and k - (ndim - tys[a].ndim) >= 0]


# ---- what the backward reads -----------------------------------------------------------
def needed_values(graph, tys, active, shape_of):
    needed = set()
    for stmt, loops in walk(graph.body):
        if isinstance(stmt, Op) and is_active_op(stmt, active):
            needed |= rule_needs(stmt, tys, active, shape_of)
    for stmt, loops in walk(graph.body):
        if isinstance(stmt, (For, If, While)) and _contains_active(stmt, active):
            if isinstance(stmt, For):
                needed |= set(names_in((stmt.start, stmt.stop)))
            elif isinstance(stmt, If):
                needed |= set(names_in((stmt.test,)))
    return needed


def _contains_active(region, active):
    for child in children(region):
        for stmt, _ in walk(child):
            if isinstance(stmt, Op) and is_active_op(stmt, active):
                return True
    return False


# ---- tape or recompute -------------------------------------------------------------------
def plan_tape(graph, tys, plan):
    """Decide, per loop block, which needed values are recomputed and which are taped."""
    plan.indices = loop_indices(graph)
    while True:
        before = set(plan.needed)
        plan.taped, plan.recomputed, plan.in_loop = {}, {}, {}
        _plan_block(graph.body, tys, plan, depth=0)
        if plan.needed == before:
            return


def _plan_block(block, tys, plan, depth):
    local_ops = {s.out: s for s in block if isinstance(s, Op) and s.out is not None
                 and s.out not in plan.mutable}
    if depth:
        for name in local_ops:
            plan.in_loop[name] = True
        order = [s.out for s in block if isinstance(s, Op) and s.out in local_ops]
        # a block that tapes anything runs in the gradient's forward: tape its costly
        # values there too rather than computing them a second time
        taping = not all(_decide(order, local_ops, tys, plan, set(plan.needed), False).values())
        decide = _decide(order, local_ops, tys, plan, plan.needed, taping)
        for name in order:
            if name in decide:
                kind = "recompute" if decide[name] else "tape"
                if kind == "tape":
                    plan.taped.setdefault(id(block), []).append(name)
                else:
                    plan.recomputed.setdefault(id(block), []).append(local_ops[name])
    for stmt in block:
        if isinstance(stmt, While) or isinstance(stmt, For) and stmt.exit:
            if depth and _contains_active(stmt, plan.active):
                # the trip count changes with every outer iteration: the backward pops it
                plan.taped.setdefault(id(block), []).append(stmt.counter)
            _plan_block(stmt.body, tys, plan, depth + 1)
        elif isinstance(stmt, For):
            _plan_block(stmt.body, tys, plan, depth + 1)
        elif isinstance(stmt, If):
            _plan_block(stmt.body, tys, plan, depth)
            _plan_block(stmt.orelse, tys, plan, depth)


# values that cost more to compute again than to store and load
COSTLY = {"exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh",
          "arctan", "arctan2", "pow", "sigmoid", "sum", "mean", "max", "min", "logsumexp",
          "matmul", "arcsin", "arccos", "arcsinh", "arccosh", "arctanh", "log10", "log2", "exp2",
          "cbrt", "erf", "erfc", "hypot"}


def _decide(order, local_ops, tys, plan, needed, taping):
    """name -> True (recompute) or False (tape) for the needed values of one block;
    `needed` grows by the values recomputing takes. With `taping`, costly ones are taped."""
    decide = {}
    for name in reversed(order):
        if name not in needed or name in decide:
            continue
        trial, wanted = dict(decide), set(needed)
        if not _recomputable(local_ops[name], tys, plan, local_ops, trial, wanted, taping):
            decide[name] = False
        elif not tys[name].is_array and _tapes_more(trial, decide, needed, tys):
            decide[name] = False     # e.g. u[i+1] - 2*u[i] + u[i-1]: one value, not three reads
        else:
            decide.update(trial)
            needed |= wanted
            decide[name] = True
    return decide


def _tapes_more(trial, decide, needed, tys):
    """Whether recomputing a scalar tapes more than the scalar: two or more values, or an
    array, that nothing else needs."""
    new = [a for a, recompute in trial.items() if not recompute and a not in decide and a not in needed]
    return len(new) >= 2 or any(tys[a].is_array for a in new)


def _recomputable(op, tys, plan, local_ops, decide, needed, taping):
    """True if the reverse sweep can recompute `op` from values it has at block start."""
    if op.gate in STORES or op.gate in ("copy", "copy_array") and any(
            a in plan.mutable for a in names_in(op.args)):
        return False
    if op.gate == "index" and op.args[0] in plan.stored_arrays:
        return False
    if tys[op.out].is_array and op.gate not in VIEW_GATES:
        return False
    if taping and op.gate in COSTLY:
        return False
    if op.gate == "dim" and op.args[0] in plan.shape_of:
        return False       # the array's shape, taped instead of the array
    for a in names_in(op.args):
        if a in plan.mutable:
            return False
        needed.add(a)
        if a in local_ops and a not in decide:
            decide[a] = _recomputable(local_ops[a], tys, plan, local_ops, decide, needed, taping)
    return True


# ---- arrays taped only to find their max or min ------------------------------------------
def taped_for_extremes(graph, tys, plan):
    """{x: m} for each taped 1-D array x whose only reader in the backward is the rule of
    one `m = np.max(x)` (or min) of its block. The adjoint goes where x equals m, so
    the tape holds those positions (`push_extremes`) instead of x."""
    readers = {}
    for op, _ in walk(graph.body):
        if isinstance(op, Op) and is_active_op(op, plan.active):
            for name in rule_needs(op, tys, plan.active, plan.shape_of):
                readers.setdefault(name, []).append(op)
    for ops in plan.recomputed.values():
        for op in ops:
            for name in names_in(op.args):
                readers.setdefault(name, []).append(op)
    carried = {n for carries in plan.carried.values() for c in carries for n in (c.start, c.end)}
    found = {}
    for block in _all_blocks(graph.body):
        for name in set(plan.taped.get(id(block), [])) - carried:
            ops = readers.get(name, [])
            if tys[name].ndim == 1 and len(ops) == 1 and _full_extreme(ops[0], name) \
                    and any(s is ops[0] for s in block) and ops[0].out in plan.taped[id(block)]:
                found[name] = ops[0].out
    return found


def _full_extreme(op, name):
    return op.gate in ("max", "min") and op.params.get("axis") is None and op.args[0] == name


# ---- copies that need not copy -------------------------------------------------------
def needless_copies(graph, plan):
    """Ids of `copy_array` ops whose array is never written while the copy is read.

    A copy's value is read later in its block and, by the backward, either from the
    tape (pushed at the end of its block, for values inside loops) or at the end of
    the forward (for values of the function body). So no write into any array after
    the copy in its block, nested blocks included, means the copy can be the array;
    unless the copy is bound to another name (`a, c = a.copy(), a` in a loop), which
    may carry it past the end of its block, to writes after it.
    """
    bound_on = {op.args[0] for op, _ in walk(graph.body)
                if isinstance(op, Op) and op.gate in SHARING_GATES and op.args}
    aliased = set()
    for block in _all_blocks(graph.body):
        for pos, stmt in enumerate(block):
            if not (isinstance(stmt, Op) and stmt.gate == "copy_array") \
                    or stmt.out in plan.mutable or stmt.out in bound_on:
                continue
            if (plan.in_loop.get(stmt.out) or block is graph.body) and not _writes(block[pos + 1:]):
                aliased.add(id(stmt))
    return aliased


# ---- values a later write would change under the backward -----------------------------
def kept_for_the_backward(graph, tys, plan):
    """Ids of ops binding (a view of) an array to another name, where names sharing that
    array are written into and the backward reads the values of one of them: they copy it
    instead. In `p = np.exp(a); p[0] = 2 * p[0]`, exp's rule reads exp(a), which the write
    into p would change. Names sharing an array only the shape of which the backward reads
    (a buffer picked from by index, then swapped and written) share it on, unless one is a
    view (`V.T`), whose copy also keeps the name's memory order one for numba."""
    group = {}

    def root(name):
        while group.get(name, name) != name:
            name = group[name]
        return name
    sharing = [op for op, _ in walk(graph.body) if isinstance(op, Op) and op.gate in SHARING_GATES
               and op.out and isinstance(op.args[0], str) and tys[op.out].is_array]
    for op in sharing:
        group[root(op.out)] = root(op.args[0])
    written = {root(name) for name in plan.stored_arrays}
    read_back = {root(name) for name in values_read_back(graph, tys, plan)}
    views = [op for op in sharing if op.gate not in ("copy", "assigned")]
    return {id(op) for op in sharing if root(op.out) in written and root(op.out) in read_back} \
        | {id(op) for op in views if root(op.out) in written and op.args[0] in plan.needed}


def values_read_back(graph, tys, plan):
    """The needed names whose values, not just their shapes, the backward reads: those its
    rules read, bar the array an index picks from (its adjoint takes only its shape), and
    the inputs of what it recomputes."""
    values = set()
    for op, _ in walk(graph.body):
        if isinstance(op, Op) and is_active_op(op, plan.active):
            inputs, output, _ = _reads(op, tys, plan.active)
            if op.gate == "index" and op.args[0] not in names_in(op.args[1:]):
                inputs.discard(op.args[0])
            values |= inputs | ({op.out} if output else set())
    for ops in plan.recomputed.values():
        for op in ops:
            values |= set(names_in(op.args))
    return values


def _all_blocks(block):
    yield block
    for stmt in block:
        for child in children(stmt):
            yield from _all_blocks(child)


def _writes(block):
    return any(isinstance(s, Op) and s.gate in STORES for s, _ in walk(block))


# ---- forward liveness for the gradient -------------------------------------------------
def liveness(graph, plan, with_value, tys):
    """Ids of forward statements the gradient must run."""
    # loop indices are set again by the reverse loops; in-loop values are recomputed or taped
    live_names = {n for n in plan.needed if not plan.in_loop.get(n) and n not in plan.indices}
    for names in plan.taped.values():
        live_names |= set(names)
    for carries in plan.carried.values():     # pushed once after their loop
        live_names |= {c.name for c in carries}
    if with_value:
        live_names |= set(names_in([graph.result]))
    # adjoints of mutable arrays start as np.zeros_like(the array)
    # and adjoints zeroed before a loop take the shape of their (top-level) value
    live_names |= {n for n in plan.mutable & plan.active if tys[n].is_array}
    live_names |= {n for n in plan.active if tys[n].is_array and not plan.in_loop.get(n)}
    for stmt, _ in walk(graph.body):    # the backward runs these loops `trips` times
        if isinstance(stmt, (While, For)) and stmt.counter and _contains_active(stmt, plan.active):
            live_names.add(stmt.counter)
        # a dot product of two vectors checks that their lengths agree; its backward would not
        if isinstance(stmt, Op) and stmt.gate == "matmul" and not tys[stmt.out].is_array:
            live_names.add(stmt.out)
    kept = set()
    changed = True
    while changed:
        changed = False
        for stmt, _ in walk(graph.body):
            if id(stmt) in kept:
                continue
            if _keeps(stmt, live_names, kept):
                kept.add(id(stmt))
                live_names |= set(uses_of(stmt))
                if isinstance(stmt, Op) and stmt.gate in STORES:
                    live_names |= set(names_in(stmt.args))
                changed = True
    return kept


def _keeps(stmt, live_names, kept):
    if isinstance(stmt, Op) and stmt.gate in ("assigned", "asserted", "printed"):
        return True     # raises, as Python does (a name read before it is set, a failed assert), or prints
    if isinstance(stmt, Op):
        target = stmt.args[0] if stmt.gate in STORES else stmt.out
        return target in live_names
    if isinstance(stmt, (For, While)) and stmt.counter and stmt.counter in live_names:
        return True     # the backward pops its trip count
    if isinstance(stmt, (For, While, If)):
        return any(id(s) in kept for child in children(stmt) for s, _ in walk(child))
    return False    # the returned value is live only when asked for (see `liveness`)
