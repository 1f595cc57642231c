"""Post-passes on the generated backward (ast in, ast out, each in place).

- `promote_scatters`: keep loop-invariant scatters in registers (below);
- `hoist_invariant_reads`: move reads that do not change out of a loop;
- `accumulate_in_place`: `d += f(...)` without a temporary where f has an in-place form;
- `fold_zero_then_add`: `d = zeros; d += c` becomes `d = c`.

(`commute.run_forwards` turns reverse loops whose iterations commute.)

Inside a reverse loop, `dpos[i, 0] += g` with `i` fixed by an outer loop is a
read-modify-write through memory on every iteration; LLVM cannot keep it in a
register because other updates of `dpos` (say `dpos[j, 0] += ...`) might alias
it. When the loop never reads the array except through such `+=` updates, the
sum is accumulated in a local scalar and added once after the loop. Addition
commutes, so the result is the same.
"""
import ast

from .gates import SMALL_PRODUCT_HELPERS


def nested_blocks(stmts):
    """The statement lists directly inside `stmts` (bodies and else-branches of loops and ifs)."""
    for stmt in stmts:
        for field in ("body", "orelse"):
            inner = getattr(stmt, field, None)
            if isinstance(inner, list):
                yield inner


def promote_scatters(stmts, names, ranks):
    """Rewrite every loop in `stmts` (recursively, innermost first), in place.

    `ranks` maps array names to their number of dimensions: only `a[i, j] += ...` that
    picks one element of `a` becomes a scalar local.
    """
    for inner in nested_blocks(stmts):
        promote_scatters(inner, names, ranks)
    out = []
    for stmt in stmts:
        if isinstance(stmt, ast.For):
            before, after = _promote(stmt, names, ranks)
            out.extend(before + [stmt] + after)
        else:
            out.append(stmt)
    stmts[:] = out


def _promote(loop, names, ranks):
    assigned = {n.id for n in ast.walk(loop) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    updates = {}
    for node in loop.body:
        if _is_scatter(node) and _invariant(node.target, assigned) and _picks_element(node, ranks):
            updates.setdefault(ast.unparse(node.target), []).append(node)
    before, after = [], []
    for key, nodes in sorted(updates.items()):
        array = nodes[0].target.value.id
        if _other_uses(loop, array, nodes):
            continue
        local = names.fresh(_local_name(nodes[0].target))
        for node in nodes:
            node.target = ast.Name(local, ast.Store())
        before.append(ast.Assign([ast.Name(local, ast.Store())], ast.Constant(0.0)))
        target = ast.parse(key, mode="eval").body
        target.ctx = ast.Store()
        after.append(ast.AugAssign(target, ast.Add(), ast.Name(local, ast.Load())))
    return before, after


def _is_scatter(node):
    return (isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add)
            and isinstance(node.target, ast.Subscript) and isinstance(node.target.value, ast.Name))


def _picks_element(node, ranks):
    index = node.target.slice
    count = len(index.elts) if isinstance(index, ast.Tuple) else 1
    return count == ranks.get(node.target.value.id)


def _invariant(target, assigned):
    index = target.slice
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    for part in parts:
        if isinstance(part, ast.Slice) or not isinstance(part, (ast.Name, ast.Constant)):
            return False
        if isinstance(part, ast.Name) and part.id in assigned:
            return False
    return True


def _other_uses(loop, array, promoted):
    """True if `array` appears in the loop other than as the target of a `+=` scatter."""
    allowed = {id(n.target.value) for n in ast.walk(loop) if _is_scatter(n)}
    allowed |= {id(n.target.value) for n in promoted}
    return any(isinstance(n, ast.Name) and n.id == array and id(n) not in allowed
               for n in ast.walk(loop))


def _local_name(target):
    index = target.slice
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    words = [str(p.value).replace("-", "m") if isinstance(p, ast.Constant) else p.id for p in parts]
    return "_".join([target.value.id] + words)


def hoist_invariant_reads(stmts, loop_indices=()):
    """Move `t = a[i, 0]` out of a loop when `i` is an enclosing loop's index, in place.

    numba cannot tell that the adjoint arrays written in the loop do not overlap
    `a`, so without this the read is repeated after every write. Only reads whose
    indices are constants or enclosing loop indices are moved: they are valid even
    when the loop runs zero times.
    """
    out = []
    for stmt in stmts:
        if isinstance(stmt, ast.For):
            inner_indices = tuple(loop_indices) + (stmt.target.id,)
            hoist_invariant_reads(stmt.body, inner_indices)
            out.extend(_hoist(stmt, loop_indices))
            out.append(stmt)
        else:
            for inner in nested_blocks([stmt]):
                hoist_invariant_reads(inner, loop_indices)
            out.append(stmt)
    stmts[:] = out


def _hoist(loop, outer_indices):
    stores = [n for n in ast.walk(loop) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    assigned = {n.id for n in stores}
    counts = {}
    for n in stores:
        counts[n.id] = counts.get(n.id, 0) + 1
    written = {t.value.id for t in _assignment_targets(loop)
               if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)}
    moved = []
    for stmt in list(loop.body):
        if not (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)):
            continue
        value = stmt.value
        if not (isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name)):
            continue
        parts = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
        fixed = all(isinstance(p, ast.Constant) or (isinstance(p, ast.Name) and p.id in outer_indices)
                    for p in parts)
        name = stmt.targets[0].id
        if fixed and value.value.id not in written and value.value.id not in assigned \
                and counts.get(name) == 1:
            loop.body.remove(stmt)
            moved.append(stmt)
    return moved


def _assignment_targets(loop):
    for n in ast.walk(loop):
        if isinstance(n, ast.Assign):
            yield from n.targets
        elif isinstance(n, ast.AugAssign):
            yield n.target


def fold_zero_then_add(stmts, counts=None):
    """`d = np.zeros_like(v)` (or `np.zeros(shape)`, a reset to an earlier value's shape)
    followed by `d += c` becomes `d = c`, in place, in every block of the backward, where
    `c`, an adjoint contribution, has d's shape.

    Only when `d` is not read in between and `c` is a fresh array that nothing else
    refers to: arithmetic or a FRESH_HELPERS call, or a name assigned one earlier in
    the same block and used nowhere else (`counts`, from `name_counts`). Another helper
    call (`unbroadcast` may return its input) or a view would let the later in-place
    `d += ...` change another adjoint.
    """
    counts = name_counts(stmts) if counts is None else counts
    for inner in nested_blocks(stmts):
        fold_zero_then_add(inner, counts)
    i = 0
    while i < len(stmts):
        name = _zeroed_name(stmts[i])
        if name:
            j = _first_use(stmts, i + 1, name)
            if j is not None and _is_add_to(stmts[j], name) and not _mentions(
                    stmts[j].value, name) and _fresh(stmts[j].value, stmts[:j], counts):
                stmts[j] = ast.Assign([ast.Name(name, ast.Store())], stmts[j].value)
                del stmts[i]
                continue
        i += 1


# helpers that always return a new array
FRESH_HELPERS = set(SMALL_PRODUCT_HELPERS.values())


def _fresh(value, before, counts):
    """True if `value` is a new array no other name refers to."""
    if _new_array(value):
        return True
    if not isinstance(value, ast.Name) or counts.get(value.id) != (1, 1):
        return False
    return any(isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
               and s.targets[0].id == value.id and _new_array(s.value) for s in before)


def _new_array(value):
    """Arithmetic, or a call of a helper in FRESH_HELPERS."""
    return isinstance(value, (ast.BinOp, ast.UnaryOp)) or (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
        and value.func.id in FRESH_HELPERS)


def name_counts(stmts):
    """name -> (times stored, times loaded) over `stmts` and everything nested in them."""
    counts = {}
    for stmt in stmts:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name):
                stored, loaded = counts.get(n.id, (0, 0))
                is_store = isinstance(n.ctx, ast.Store)
                counts[n.id] = (stored + is_store, loaded + (not is_store))
    for stmt in _aug_assigns(stmts):   # `d += c` reads d as well as writing it
        if isinstance(stmt.target, ast.Name):
            stored, loaded = counts[stmt.target.id]
            counts[stmt.target.id] = (stored, loaded + 1)
    return counts


def _aug_assigns(stmts):
    for stmt in stmts:
        for n in ast.walk(stmt):
            if isinstance(n, ast.AugAssign):
                yield n


# in-place forms of `d += f(...)`
IN_PLACE = {"np.outer": "add_outer", "tie_share_all": "add_tie_share_all",
            "tie_share_at": "add_tie_share_at"}


def accumulate_in_place(stmts, counts=None):
    """`t = f(...)` then `d += t` (t used nowhere else) becomes `d += f(...)`, and
    `d += f(...)` the call `add_f(d, ...)` when f has an in-place form: no temporary array.
    """
    counts = name_counts(stmts) if counts is None else counts
    for inner in nested_blocks(stmts):
        accumulate_in_place(inner, counts)
    i = 0
    while i < len(stmts):
        stmt = stmts[i]
        if i + 1 < len(stmts) and _single_use_into_next(stmt, stmts[i + 1], counts):
            stmts[i + 1].value = stmt.value
            del stmts[i]
            continue
        if _is_add_to_name(stmt) and isinstance(stmt.value, ast.Call) and \
                ast.unparse(stmt.value.func) in IN_PLACE:
            call = ast.Call(ast.Name(IN_PLACE[ast.unparse(stmt.value.func)], ast.Load()),
                            [ast.Name(stmt.target.id, ast.Load())] + stmt.value.args, [])
            stmts[i] = ast.Expr(call)
        i += 1


def _single_use_into_next(stmt, following, counts):
    """`t = value` directly followed by `d += t`, t stored and read once in all."""
    return (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
            and _is_add_to_name(following) and isinstance(following.value, ast.Name)
            and following.value.id == stmt.targets[0].id
            and following.target.id != stmt.targets[0].id
            and counts.get(stmt.targets[0].id) == (1, 1))


def _is_add_to_name(stmt):
    return (isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add)
            and isinstance(stmt.target, ast.Name))


def _zeroed_name(stmt):
    if (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.Call)
            and ast.unparse(stmt.value.func) in ("np.zeros_like", "np.zeros")):
        return stmt.targets[0].id
    return None


def _first_use(stmts, start, name):
    for j in range(start, len(stmts)):
        if _mentions(stmts[j], name):
            return j
    return None


def _is_add_to(stmt, name):
    return (isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add)
            and isinstance(stmt.target, ast.Name) and stmt.target.id == name)


def _mentions(node, name):
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))
