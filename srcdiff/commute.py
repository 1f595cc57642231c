"""Reverse loops whose iterations commute run counting up (`run_forwards`).

A reverse loop counts down so that it pops its tape in order and passes adjoints from
one iteration to the one before. When no iteration depends on another (each sets its
own names before reading them, owns the elements it writes, and only adds into the
rest), the order does not change the sums, and LLVM optimises loops that count up
better (it vectorises them).
"""
import ast
import copy

from .optimize import IN_PLACE, nested_blocks


def run_forwards(stmts, function_body=None, nested=False):
    """Run inner reverse loops forward when their iterations commute, in place.

    A loop that starts by popping scalars reads them by position instead; what makes
    iterations commute is in `_private_names`. The names private to an iteration must
    not be read after the loop before they are set again. Only loops inside other
    loops are turned: they are the short, hot ones.
    """
    function_body = stmts if function_body is None else function_body
    for stmt in list(stmts):
        for inner in nested_blocks([stmt]):
            run_forwards(inner, function_body, nested or isinstance(stmt, ast.For))
        if not (nested and isinstance(stmt, ast.For) and hasattr(stmt, "forward_range")):
            continue
        popped = _pops_by_position(stmt)
        loop = popped[1] if popped else stmt
        private = _private_names(loop, function_body, stmt)
        if private is not None and not _read_outside(function_body, stmt, private):
            if popped:
                stmt.body = loop.body
                stmts.insert(stmts.index(stmt), popped[0])
            stmt.iter = stmt.forward_range


def _pops_by_position(loop):
    """(`top -= c * trips`, a copy of `loop` reading its c scalars per iteration by position)
    when `loop` starts by popping c scalars and counts 0, 1, ... forward; else None.
    """
    body = [s for s in loop.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    pop = body[0] if body else None
    if not (isinstance(pop, ast.AugAssign) and isinstance(pop.op, ast.Sub)
            and isinstance(pop.target, ast.Name) and isinstance(pop.value, ast.Constant)):
        return None
    top, count = pop.target.id, pop.value.value
    reads_top = [n for n in ast.walk(body[1]) if isinstance(n, ast.Subscript)
                 and isinstance(n.slice, ast.Name) and n.slice.id == top] if len(body) > 1 else []
    forward = loop.forward_range
    if not reads_top or len(forward.args) != 1:   # range(stop): iteration k reads top + c*k ...
        return None
    trips = ast.Call(ast.Name("len", ast.Load()), [forward], [])
    before = ast.AugAssign(ast.Name(top, ast.Store()), ast.Sub(),
                           trips if count == 1 else ast.BinOp(ast.Constant(count), ast.Mult(), trips))
    index = ast.Name(loop.target.id, ast.Load())
    base = ast.BinOp(ast.Name(top, ast.Load()), ast.Add(),
                     index if count == 1 else ast.BinOp(ast.Constant(count), ast.Mult(), index))
    body = [_ReplaceName(top, base).visit(copy.deepcopy(s)) for s in loop.body if s is not pop]
    return before, ast.For(loop.target, loop.iter, body, [])


class _ReplaceName(ast.NodeTransformer):
    def __init__(self, name, by):
        self.name, self.by = name, by

    def visit_Name(self, node):
        return self.by if node.id == self.name and isinstance(node.ctx, ast.Load) else node


def _private_names(loop, function_body, in_body):
    """Names set before read in every iteration of `loop` (`in_body` as it stands in
    `function_body`), or None if its iterations may not commute.

    Besides names set before they are read, an iteration owns: the elements `a[k]` of
    an array only ever indexed by the loop's own index `k`; and a name the iteration
    ends by resetting to a constant that is the only value it is given outside the loop
    (`dq = 0.0`, an adjoint of a loop-local), so every iteration starts from it.
    Names a nested loop sets are its own: the rest of the iteration may not read them
    (the nested loop may run no iteration).
    """
    private = {loop.target.id} | _reset_each_iteration(loop, function_body, in_body)
    own = _own_elements(loop)
    read, added, nested_only = set(), set(), set()

    def load(node):
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and n.id not in private:
                if n.id in added or n.id in nested_only:
                    return False
                read.add(n.id)
        return True

    def commutes(stmts):
        for stmt in stmts:
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue                                   # a comment
            if isinstance(stmt, ast.For):
                if stmt.orelse or not load(stmt.iter):
                    return False
                before = set(private)
                private.add(stmt.target.id)
                if not commutes(stmt.body):
                    return False
                nested_only.update(private - before)
                private.intersection_update(before)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                    stmt.targets[0], ast.Name):
                name = stmt.targets[0].id
                if not load(stmt.value) or name in read or name in added or name in nested_only:
                    return False
                private.add(name)
            elif _element_of(stmt, own):
                if not load(stmt.value):                   # the iteration's own element
                    return False
            elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name) and \
                    stmt.target.id in private:
                if not load(stmt.value):
                    return False
            elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add):
                target = stmt.target
                base = target if isinstance(target, ast.Name) else target.value
                if not isinstance(base, ast.Name) or base.id in private or base.id in read:
                    return False
                if isinstance(target, ast.Subscript) and not load(target.slice):
                    return False
                if not load(stmt.value):
                    return False
                added.add(base.id)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and \
                    ast.unparse(stmt.value.func) in IN_PLACE.values():
                first, rest = stmt.value.args[0], stmt.value.args[1:]
                if first.id in private or first.id in read or first.id in own or \
                        not all(load(a) for a in rest):
                    return False
                added.add(first.id)
            else:
                return False
        return True

    return private | nested_only if commutes(loop.body) else None


def _element_of(stmt, arrays):
    """True if `stmt` sets (or adds to) one element of an array in `arrays`."""
    target = stmt.target if isinstance(stmt, ast.AugAssign) else \
        stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
    return isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
        and target.value.id in arrays


def _own_elements(loop):
    """Arrays every use of which in `loop` is an element `a[k]` at the loop's index `k`
    (none if the body rebinds `k`)."""
    index = loop.target.id
    body = ast.Module(loop.body, [])
    if index in _stored(body):
        return set()
    at_index = [node.value for node in ast.walk(body)
                if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                and isinstance(node.slice, ast.Name) and node.slice.id == index]
    element_uses = {id(name) for name in at_index}
    return {array for array in {name.id for name in at_index}
            if all(id(use) in element_uses for use in ast.walk(body)
                   if isinstance(use, ast.Name) and use.id == array)}


def _reset_each_iteration(loop, function_body, in_body):
    """Names `loop` sets to a constant, after all its other uses in an iteration, where
    every use outside the loop (`in_body` in `function_body`) sets them to that same
    constant."""
    body = [s for s in loop.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    found = set()
    for position, stmt in enumerate(body):
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Constant)):
            continue
        name, value = stmt.targets[0].id, stmt.value.value
        later = [n for s in body[position + 1:] for n in ast.walk(s)
                 if isinstance(n, ast.Name) and n.id == name]
        if later or any(s is not stmt and _sets_to(s, name) for s in body):
            continue
        if all(_sets_to(s, name, value) for s in _statements_using(function_body, name, in_body)):
            found.add(name)
    return found


def _sets_to(stmt, name, value=None):
    """True if `stmt` is `name = <constant>` (that constant, if `value` is given)."""
    return (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == name
            and isinstance(stmt.value, ast.Constant)
            and (value is None or (type(stmt.value.value) is type(value)
                                   and stmt.value.value == value)))


def _statements_using(stmts, name, skip):
    """The innermost statements of `stmts` (outside `skip`) that mention `name`."""
    found = []
    for stmt in stmts:
        if stmt is skip:
            continue
        if isinstance(stmt, (ast.For, ast.While, ast.If)):
            head = stmt.iter if isinstance(stmt, ast.For) else stmt.test
            if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(head)):
                found.append(stmt)
            for field in ("body", "orelse"):
                found += _statements_using(getattr(stmt, field), name, skip)
        elif any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(stmt)):
            found.append(stmt)
    return found


def _read_outside(block, loop, names, known=frozenset()):
    """True if a name in `names` may be read outside `loop` holding the value `loop` left.

    `known` are the names set again, in straight-line code, since `loop` could have run.
    """
    known = set(known)
    for stmt in block:
        if stmt is loop:
            known -= names
            continue
        if isinstance(stmt, (ast.For, ast.While, ast.If)):
            inside = _stored(stmt)
            inner = (known - inside) | ({stmt.target.id} if isinstance(stmt, ast.For) else set())
            if _loads(stmt.iter if isinstance(stmt, ast.For) else stmt.test) & names - known:
                return True
            for field in ("body", "orelse"):
                if _read_outside(getattr(stmt, field), loop, names, inner):
                    return True
            known -= inside
            continue
        if _loads(stmt) & names - known:
            return True
        known |= {t.id for t in getattr(stmt, "targets", []) if isinstance(t, ast.Name)}
    return False


def _loads(node):
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return names | {a.target.id for a in ast.walk(node)
                    if isinstance(a, ast.AugAssign) and isinstance(a.target, ast.Name)}


def _stored(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
