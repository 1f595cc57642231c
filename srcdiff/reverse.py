"""The reverse sweep: a typed, analysed graph -> forward and backward statements (ast).

Forward: the graph's statements as Python, in order; inside loops, the values
the backward cannot recompute are pushed on a tape at the end of their block.
Backward: the statements in reverse, each through its gate rule; loops run
backwards (same index values, reverse order), popping their block's tape
entries and recomputing cheap values first. Adjoints of single assignments
are created by their first contribution; adjoints of mutable names start at
zero and are reset when the assignment they belong to is undone.
"""
import ast

from .analysis import STORES, children, is_active_op
from .gates import FORWARD, OpTypes, index_expr
from .graph import Const, For, If, Op, Return, While, names_in
from .infer import const_type
from .rules import BROADCASTING, NON_DIFFERENTIABLE, RULES, UNBOUNDED
from .sym import Sym, helper, np_, tuple_
from .zeros import ZeroAdjoints

COMMENT = "__srcdiff_comment__"


def comment(text):
    """A placeholder statement that emit.py turns into a `# text` line."""
    return ast.Expr(ast.Constant(COMMENT + text))


def assign(name, value):
    return ast.Assign([ast.Name(name, ast.Store())], value.node)


def aug_add(target_node, value):
    return ast.AugAssign(target_node, ast.Add(), value.node)


class Sweep:
    debug_nans = False

    def __init__(self, graph, tys, plan, names):
        self.graph, self.tys, self.plan, self.names = graph, tys, plan, names
        self.adjoints = {}
        self.records = {}            # array taped as where it equals its extreme: its record's name
        self.definition_counts = None
        self.initialized = set()
        self.zeros = ZeroAdjoints()
        self.owned = self._scattered_arrays()
        self.uses_tape = bool(plan.taped)
        self.prereserved = set()
        self.depth = 0
        self.first_defs = _first_defs(graph.body)
        self.tape = names.fresh("tape") if self.uses_tape else "tape"
        self.top = names.fresh("top") if self.uses_tape else "top"

    # ---- names and types -----------------------------------------------------------------
    def adj(self, name):
        if name not in self.adjoints:
            self.adjoints[name] = self.names.fresh("d" + name)
        return self.adjoints[name]

    def ty(self, operand):
        return const_type(operand.value) if isinstance(operand, Const) else self.tys[operand]

    def op_types(self, op):
        return OpTypes([self.ty(a) for a in op.args], self.tys.get(op.out))

    @staticmethod
    def sym(operand):
        return Sym(operand.value if isinstance(operand, Const) else operand)

    def zero(self, name, dims=None):
        """Zeros like `name`'s value, or, given its `dims`, of that shape (an earlier value's)."""
        if dims:
            return np_.zeros(tuple_([Sym(d) for d in dims]), Sym("np").attr(self.tys[name].dtype))
        return np_.zeros_like(Sym(name)) if self.tys[name].is_array else Sym(0.0)

    def _scattered_arrays(self):
        owned = set()
        for stmt, _ in _walk_ops(self.graph.body):
            if stmt.gate == "index" and isinstance(stmt.args[0], str):
                owned.add(stmt.args[0])
        return owned

    # ---- the user's lines -----------------------------------------------------------------
    @staticmethod
    def place(stmt):
        return stmt.where.filename, stmt.where.line

    def line_comment(self, where, prefix=""):
        """`# line N: text` above the code of line N (`line N of file:` for a line of a helper
        defined in another file), which locate.py reads to report run-time errors."""
        of = f" of {where.filename}" if where.filename != self.graph.filename else ""
        return comment(f"{prefix}line {where.line}{of}: {where.text.strip()}")

    # ---- forward -----------------------------------------------------------------------
    def forward(self, block, saves, live=None):
        """Forward statements of `block`; with `saves`, tape pushes and only live statements."""
        out, line = [], None
        for stmt in block:
            if live is not None and id(stmt) not in live or not saves and self._taped_dim(stmt):
                continue
            if self.place(stmt) != line and isinstance(stmt, Op):
                line = self.place(stmt)
                out.append(self.line_comment(stmt.where))
            out.extend(FORWARD_STATEMENT[type(stmt)](self, stmt, saves, live))
            if isinstance(stmt, (For, While, If)):
                line = None
        if saves:
            out.extend(self.pushes(block))
        return out

    def _taped_dim(self, stmt):
        """A dim the gradient tapes for the backward, and the forward alone does not need."""
        return isinstance(stmt, Op) and stmt.params.get("shape_only", False)

    def forward_op(self, op, saves, live):
        args = [self.sym(a) for a in op.args]
        ty = self.op_types(op)
        if op.gate in STORES:
            target = args[0][index_expr(op.params["index"], args[2:])].node
            target.ctx = ast.Store()
            if op.gate == "store":
                return [ast.Assign([target], args[1].node)]
            op_node = ast.Add() if op.gate == "store_add" else ast.Sub()
            return [ast.AugAssign(target, op_node, args[1].node)]
        value = FORWARD[op.gate](op, ty, *args)
        if op.out is None:                 # a call run for what it does: print(...)
            return [ast.Expr(value.node)]
        if id(op) in self.plan.aliased:
            value = args[0]                # nothing writes into the array while the copy is read
        if op.gate == "index" and op.args[0] in self.plan.stored_arrays and ty.out.is_array \
                or id(op) in self.plan.kept:
            value = value.method("copy")   # a view would change when the array is written
        return [ast.Assign([ast.Name(op.out, ast.Store())], value.node)]

    def forward_for(self, loop, saves, live):
        pre = []
        total = self.pushes_of_loop(loop) if saves and id(loop.body) not in self.prereserved else None
        if total is not None:
            # the loop's whole tape is known at its entry: allocate it once
            pre.append(self.reserve(Sym(self.top) + total))
            self.prereserved |= {id(b) for b in _blocks(loop.body)}
        elif saves and id(loop.body) not in self.prereserved:
            ahead = self.pushes_of_loop(loop, estimate=True)
            if ahead is not None:   # reserved ahead, with the carried arrays pushed after it
                for c in self.plan.carried.get(id(loop.body), []):
                    ahead = ahead + Sym(c.name).attr("size") + self.tys[c.name].ndim
                pre.append(self.reserve(Sym(self.top) + ahead))   # the checks in the loop stay
        body = self.forward(loop.body, saves, live)
        if loop.exit:
            if saves and self._needs_counter(loop):
                pre.append(assign(loop.counter, Sym(0)))
                body.insert(0, ast.AugAssign(ast.Name(loop.counter, ast.Store()), ast.Add(),
                                             ast.Constant(1)))
            body.append(ast.If(ast.Name(loop.exit, ast.Load()), [ast.Break()], []))
        header = self.line_comment(loop.where)
        post = self.push_carried(loop) if saves else []
        return pre + [header, ast.For(ast.Name(loop.index, ast.Store()), self.range_of(loop).node,
                                      body or [ast.Pass()], [])] + post

    def forward_while(self, loop, saves, live):
        test_block = self.forward(loop.test_block, False)
        body = self.forward(loop.body, saves, live)
        counting = saves and self._needs_counter(loop)
        if counting:
            body.append(ast.AugAssign(ast.Name(loop.counter, ast.Store()), ast.Add(), ast.Constant(1)))
        if loop.exit:
            body.append(ast.If(ast.Name(loop.exit, ast.Load()), [ast.Break()], []))
        start = [assign(loop.counter, Sym(0))] if counting else []
        header = self.line_comment(loop.where)
        return start + test_block + [header, ast.While(self.sym(loop.test).node,
                                                       body + test_block or [ast.Pass()], [])]

    def forward_if(self, branch, saves, live):
        body = self.forward(branch.body, saves, live) or [ast.Pass()]
        orelse = self.forward(branch.orelse, saves, live)
        header = self.line_comment(branch.where)
        return [header, ast.If(self.sym(branch.test).node, body, orelse)]

    def forward_return(self, ret, saves, live):
        return []

    def range_of(self, loop, bounds=None):
        """`range(...)` of `loop`, with the bounds named in `bounds` given by their expressions."""
        bounds = bounds or {}
        start, stop, step = (bounds.get(b) or self.sym(b) if isinstance(b, str) else self.sym(b)
                             for b in (loop.start, loop.stop, loop.step))
        if isinstance(loop.step, Const) and loop.step.value == 1:
            args = [stop] if isinstance(loop.start, Const) and loop.start.value == 0 else [start, stop]
        else:
            args = [start, stop, step]
        return Sym(ast.Call(ast.Name("range", ast.Load()), [a.node for a in args], []))

    def _needs_counter(self, loop):
        return any(is_active_op(s, self.plan.active) for s, _ in _walk_ops(loop.body))

    def pushes_of_loop(self, loop, defined=frozenset(), estimate=False, bounds=None):
        """The number of tape entries `loop` pushes in all, as an expression, if known at entry.

        `defined` are the names set inside the enclosing loops counted with it. With
        `estimate`, the arrays a loop carries count with their size at its entry, which
        may change: a size to reserve ahead, not a bound.
        """
        per_iteration = self._pushes_per_iteration(loop, defined, estimate)
        if not per_iteration or loop.exit or id(loop.body) in self.plan.carried and not estimate:
            return None
        trips = Sym(ast.Call(ast.Name("len", ast.Load()), [self.range_of(loop, bounds).node], []))
        return trips * per_iteration if per_iteration != 1 else trips

    def _pushes_per_iteration(self, loop, defined, estimate):
        defined = set(defined) | {st.out for st, _ in _walk_ops(loop.body)} | {loop.index} | {
            st.index for b in _blocks(loop.body) for st in b if isinstance(st, For)}
        return self._pushes_of_block(loop.body, defined, estimate)

    def _pushes_of_block(self, block, defined, estimate):
        """Tape entries one run of `block` pushes, as an expression valid before the loop
        around it (0 if none), or None if unknown there. A branch counts its two arms
        together: a bound, as only one of them runs."""
        names = self.taped_here(block)
        total = len([n for n in names if not self.tys[n].is_array])
        for name in names:
            if self.tys[name].is_array:
                size = self._size_at_entry(name, block, defined, estimate)
                if size is None:
                    return None
                total = size + total
        for stmt in block:
            if not any(self.plan.taped.get(id(b)) for child in children(stmt) for b in _blocks(child)):
                continue
            if isinstance(stmt, If):
                inner = [self._pushes_of_block(arm, defined, estimate) for arm in (stmt.body, stmt.orelse)]
                inner = None if None in inner else inner[0] + inner[1]
            elif isinstance(stmt, For):
                bounds = self._bounds_at_entry(stmt, block, defined)
                inner = None if bounds is None else self.pushes_of_loop(stmt, defined, estimate, bounds)
            else:
                return None      # a `while`, or bounds that change: count as it runs
            if inner is None:
                return None
            total = inner + total
        return total

    def _bounds_at_entry(self, loop, block, defined):
        """{bound: expression} for the bounds of nested `loop` that `block` computes (once)
        from values the enclosing loop does not change, as `n - 1` or `x.shape[0]`: its trip
        count is then known at the enclosing loop's entry. None if a bound changes there."""
        bounds = {}
        for name in set(names_in((loop.start, loop.stop))) & defined:
            bounds[name] = self._invariant(name, block, defined)
            if bounds[name] is None:
                return None
        return bounds

    def _invariant(self, name, block, defined, depth=4, gates=("add", "sub", "mul", "floordiv", "dim")):
        """An expression for `name`, set once in `block` by integer arithmetic or a dim from
        values the enclosing loop does not change (or from such names), else None."""
        op = next((s for s in block if isinstance(s, Op) and s.out == name), None)
        if not depth or op is None or op.gate not in gates or self._definitions(name) != 1:
            return None
        args = []
        for a in op.args:
            args.append(self._invariant(a, block, defined, depth - 1)
                        if isinstance(a, str) and a in defined else self.sym(a))
            if args[-1] is None:
                return None
        return FORWARD[op.gate](op, self.op_types(op), *args)

    def _definitions(self, name):
        if self.definition_counts is None:
            self.definition_counts = {}
            for op, _ in _walk_ops(self.graph.body):
                self.definition_counts[op.out] = self.definition_counts.get(op.out, 0) + 1
        return self.definition_counts.get(name, 0) + (name in self.graph.params)

    def _size_at_entry(self, name, block, defined, estimate):
        """Tape entries of array `name` as an expression valid before the loop, if there is one:
        for a copy of an array the loop never rebinds (writes keep its size), or, to
        `estimate`, one it carries."""
        op = next((s for s in block if isinstance(s, Op) and s.out == name), None)
        carried = {c.name for c in self.plan.carried.get(id(block), [])} if estimate else set()
        if op is None or op.gate != "copy_array" or not isinstance(op.args[0], str) \
                or op.args[0] in set(defined) - carried:
            return None
        return Sym(op.args[0]).attr("size") + self.record_extra(name)

    # ---- the tape ------------------------------------------------------------------------
    def reserve(self, size):
        """Grow the tape to hold `size` entries; the test is inline, so no call while it fits."""
        tape = Sym(self.tape)
        grow = assign(self.tape, helper("reserve", tape, size))
        return ast.If((size > tape.attr("shape")[0]).node, [grow], [])

    def taped_here(self, block):
        """The names `block` pushes at its end: its taped values but the carried ones."""
        ends = {c.end for c in self.plan.carried.get(id(block), [])}
        return [n for n in self.plan.taped.get(id(block), []) if n not in ends]

    def pushes(self, block):
        names = self.taped_here(block)
        if not names:
            return []
        scalars = [n for n in names if not self.tys[n].is_array]
        arrays = [n for n in names if self.tys[n].is_array]
        out = []
        if id(block) not in self.prereserved:
            size = Sym(self.top) + len(scalars)
            for a in arrays:
                size = size + Sym(a).attr("size") + self.record_extra(a)
            out.append(self.reserve(size))
        for i, n in enumerate(scalars):
            slot = Sym(self.tape)[Sym(self.top) + i if i else Sym(self.top)].node
            slot.ctx = ast.Store()
            out.append(ast.Assign([slot], Sym(n).node))
        if scalars:
            out.append(ast.AugAssign(ast.Name(self.top, ast.Store()), ast.Add(), ast.Constant(len(scalars))))
        for a in arrays:
            push = helper("push_array", Sym(self.tape), Sym(self.top), Sym(a)) \
                if a not in self.plan.extremes else \
                helper("push_extremes", Sym(self.tape), Sym(self.top), Sym(a), Sym(self.plan.extremes[a]))
            out.append(assign(self.top, push))
        return out

    def record_extra(self, name):
        """Tape entries of array `name` beyond its data: its dims (or, for the record of where
        it equals its extreme, its size, the count of positions and the record's length)."""
        return 3 if name in self.plan.extremes else self.tys[name].ndim

    def record(self, name):
        """The name of the tape position of the record of where array `name` is extreme."""
        if name not in self.records:
            self.records[name] = self.names.fresh(name + "_at")
        return self.records[name]

    def pops(self, block):
        names = self.taped_here(block)
        scalars = [n for n in names if not self.tys[n].is_array]
        arrays = [n for n in names if self.tys[n].is_array]
        # a carried value is the start popped one iteration before (or after the loop)
        out = [assign(c.end, Sym(c.start)) for c in self.plan.carried.get(id(block), [])]
        for a in reversed(arrays):
            out.extend(self.pop_array(a))
        if scalars:
            out.append(ast.AugAssign(ast.Name(self.top, ast.Store()), ast.Sub(), ast.Constant(len(scalars))))
        for i, n in enumerate(scalars):
            out.append(assign(n, self.from_tape(Sym(self.tape)[Sym(self.top) + i if i else Sym(self.top)], n)))
        return out

    def pop_array(self, name):
        """Statements popping array `name` (the tape holds float64: other dtypes convert back)."""
        if name in self.plan.extremes:
            pop = helper("pop_extremes", Sym(self.tape), Sym(self.top))
            return [ast.Assign([ast.Tuple([ast.Name(self.record(name), ast.Store()),
                                           ast.Name(self.top, ast.Store())], ast.Store())], pop.node)]
        pop = helper(f"pop_array{self.tys[name].ndim}", Sym(self.tape), Sym(self.top))
        out = [ast.Assign([ast.Tuple([ast.Name(name, ast.Store()), ast.Name(self.top, ast.Store())],
                                     ast.Store())], pop.node)]
        if self.tys[name].dtype != "float64":
            out.append(assign(name, self.from_tape(Sym(name), name)))
        return out

    def push_carried(self, loop):
        """After `loop`: push the final value of each array it carries."""
        out = []
        for c in self.plan.carried.get(id(loop.body), []):
            out.append(self.reserve(Sym(self.top) + Sym(c.name).attr("size") + self.tys[c.name].ndim))
            out.append(assign(self.top, helper("push_array", Sym(self.tape), Sym(self.top), Sym(c.name))))
        return out

    def from_tape(self, slot, name):
        """`slot` (a float64 read from the tape, a scalar or a popped array) in `name`'s dtype."""
        dtype = self.tys[name].dtype
        if dtype == "bool":
            return Sym(ast.Compare(slot.node, [ast.NotEq()], [ast.Constant(0.0)]))
        if dtype != "float64" and self.tys[name].is_array:
            return slot.method("astype", Sym("np").attr(dtype))
        if dtype == "int64":
            return Sym(ast.Call(ast.Name("int", ast.Load()), [slot.node], []))
        if dtype == "float32":
            return np_.float32(slot)
        return slot

    # ---- backward ------------------------------------------------------------------------
    def backward(self, block, local_names):
        """Reverse statements of `block`; `local_names` are the single assignments it defines."""
        out = []
        pops = self.pops(block)
        recompute = [s for op in self.plan.recomputed.get(id(block), [])
                     for s in self.forward_op(op, False, None)]
        line = None
        for stmt in reversed(block):
            if isinstance(stmt, Op):
                code = self.backward_op(stmt)
                if self.debug_nans:
                    code = with_finite_checks(code, stmt)
                if code and self.place(stmt) != line:
                    line = self.place(stmt)
                    out.append(self.line_comment(stmt.where))
                out.extend(self.cancelled_note(stmt) if code else [])
                out.extend(code)
            elif isinstance(stmt, (For, While, If)):
                out.extend(self.backward_region(stmt, local_names))
                line = None
        # pops stay even when nothing else does: the blocks reversed later read below them
        return pops + recompute + out if out else pops

    def cancelled_note(self, op):
        """Why a log-sum-exp's shift gets no adjoint, where it is added back."""
        shifts = [a for a in op.args if a in self.plan.cancelling] if op.gate == "add" else []
        return [comment(f"{m} cancels in {m} + log(sum(exp(... - {m}))): its adjoint is zero")
                for m in shifts]

    def backward_region(self, region, local_names):
        if not _contains_active(region, self.plan.active):
            return []
        inits = []
        fresh = self._contributed(region) & local_names - self.initialized - self.plan.mutable
        for name in sorted(fresh):
            inits.append(assign(self.adj(name), self.zero(name)))
            self.zeros.zeroed(name)
            self.initialized.add(name)
            self.owned.add(name)    # a fresh zero array: safe to accumulate into in place
        header = self.line_comment(region.where, "reverse of ")
        self.depth += isinstance(region, (For, While))
        code = BACKWARD_REGION[type(region)](self, region)
        self.depth -= isinstance(region, (For, While))
        return inits + [header] + code

    def backward_for(self, loop):
        body = self.backward(loop.body, self._locals(loop.body)) or [ast.Pass()]
        node = ast.For(ast.Name(loop.index, ast.Store()), self.reversed_range(loop).node, body, [])
        if not loop.exit:   # commute.run_forwards may run it in forward order
            node.forward_range = self.range_of(loop).node
        # popped in the reverse of the order push_carried pushed them
        carried = [s for c in reversed(self.plan.carried.get(id(loop.body), []))
                   for s in self.pop_array(c.start)]
        return carried + [node]

    def reversed_range(self, loop):
        start, stop = self.sym(loop.start), self.sym(loop.stop)
        if not isinstance(loop.step, Const):       # a step known at run time, of either sign
            step = self.sym(loop.step)
            first = (Sym(loop.counter) - 1) * step + start if loop.exit \
                else helper("range_last", start, stop, step)
            return Sym(ast.Call(ast.Name("range", ast.Load()), [first.node, (start - step).node,
                                                                (-step).node], []))
        step = loop.step.value
        if loop.exit:   # it may have stopped early: run back from the last executed index
            from_zero = isinstance(loop.start, Const) and loop.start.value == 0
            last = (Sym(loop.counter) - 1) * step
            first = last if from_zero else start + last
            end = Sym(-1 if step > 0 else 1) if from_zero else start - 1 if step > 0 else start + 1
        elif step == 1:
            first = stop - 1
            end = Sym(-1) if isinstance(loop.start, Const) and loop.start.value == 0 else start - 1
        else:
            first = helper("range_last", start, stop, step)
            end = start - 1 if step > 0 else start + 1
        return Sym(ast.Call(ast.Name("range", ast.Load()), [first.node, end.node, ast.Constant(-step)], []))

    def backward_while(self, loop):
        body = self.backward(loop.body, self._locals(loop.body)) or [ast.Pass()]
        trips = Sym(ast.Call(ast.Name("range", ast.Load()), [ast.Name(loop.counter, ast.Load())], []))
        return [ast.For(ast.Name("_", ast.Store()), trips.node, body, [])]

    def backward_if(self, branch):
        body, orelse = self.zeros.branches(
            lambda: self.backward(branch.body, self._locals(branch.body)) or [ast.Pass()],
            lambda: self.backward(branch.orelse, self._locals(branch.orelse)))
        return [ast.If(self.sym(branch.test).node, body, orelse)]

    def _locals(self, block):
        return {s.out for s in block if isinstance(s, Op) and s.out and s.out not in self.plan.mutable}

    def _contributed(self, region):
        got = set()
        for op, _ in _walk_ops(children_flat(region)):
            if is_active_op(op, self.plan.active):
                sources = op.args[1:2] if op.gate in STORES else (
                    op.args[:1] if op.gate == "index" else op.args)
                got |= {a for a in names_in(sources) if a in self.plan.active}
        return got

    def backward_op(self, op):
        active = self.plan.active
        if not is_active_op(op, active):
            return []
        if op.gate in STORES:
            return self.backward_store(op)
        out = []
        if op.gate not in NON_DIFFERENTIABLE and self._has_adjoint(op.out):
            out = self.apply_rule(op)
        if op.out in self.plan.mutable and not _self_update(op) and self._may_be_reused(op):
            out.append(assign(self.adj(op.out), self.zero(op.out, self.plan.old_dims.get(id(op)))))
            self.zeros.zeroed(op.out)
        return out

    def _may_be_reused(self, op):
        """False when undoing this assignment leaves no earlier value to give an adjoint to."""
        return self.depth > 0 or self.first_defs.get(op.out) is not op

    def _has_adjoint(self, name):
        return name in self.plan.mutable or name in self.initialized

    def apply_rule(self, op):
        g = Sym(self.adj(op.out))
        if op.gate == "index":
            return self.scatter(op, g, [self.sym(a) for a in op.args])
        if self.plan.extremes.get(op.args[0]) == op.out:    # x on the tape as where it is m
            share = helper("tie_share_at", g, Sym(self.tape), Sym(self.record(op.args[0])))
            return self.accumulate(op.args[0], share, op.out) \
                if op.args[0] in self.plan.active else []
        if op.gate in UNBOUNDED and self.zeros.may_be_zero(op.out):
            return self.rule_unless_zero(op, g)
        return self.contributions(op, g)

    def rule_unless_zero(self, op, g):
        """The rule of `op` under `if g != 0`: where its adjoint is still zero its inputs get
        nothing, as in `r = sqrt(x); if r == 0: return 0.0` at x = 0 (0 * inf would be NaN)."""
        starts = []
        for arg in dict.fromkeys(names_in(op.args)):
            if arg in self.plan.active and arg not in self.initialized | self.plan.mutable:
                starts.append(assign(self.adj(arg), self.zero(arg)))
                self.initialized.add(arg)
                self.owned.add(arg)
                self.zeros.zeroed(arg)
        code = self.contributions(op, g)
        if not code:
            return starts
        test = np_.any(g) if self.tys[op.out].is_array else g.ne(0.0)
        why = comment(f"{g} is zero where nothing used {op.out}: no rule then (its slope may be inf)")
        return starts + [why, ast.If(test.node, code, [])]

    def contributions(self, op, g):
        """Statements adding the contributions of `op`'s rule to its inputs' adjoints."""
        args = [self.sym(a) for a in op.args]
        ty = self.op_types(op)
        contributions = RULES[op.gate](op, ty, g, Sym(op.out), *args)
        out, self_term = [], None
        for arg, c, arg_ty in zip(op.args, contributions, ty.args):
            if c is None or not isinstance(arg, str) or arg not in self.plan.active:
                continue
            if op.gate in BROADCASTING and may_broadcast(arg_ty, ty):
                c = fit(c, arg, arg_ty, ty.out, self.plan.shape_of.get(arg))
            if arg == op.out:
                self_term = c if self_term is None else self_term + c
                continue
            out.extend(self.accumulate(arg, c, op.out))
        if self_term is not None and ast.dump(self_term.node) != ast.dump(g.node):
            out.append(assign(self.adj(op.out), self_term))
        return out

    def scatter(self, op, g, args):
        array = op.args[0]
        out = []
        if array not in self.plan.active:
            return out
        if array == op.out:     # `h = h[1:]`: the old h's adjoint is a new array, g goes into it
            held = self.names.fresh(self.adj(array) + "_part")
            old = self.zero(array, self.plan.old_dims.get(id(op)))
            out += [assign(held, g), assign(self.adj(array), old)]
            g = Sym(held)
            self.zeros.zeroed(array)
        elif array not in self.plan.mutable and array not in self.initialized:
            out.append(assign(self.adj(array), self.zero(array)))
            self.initialized.add(array)
        self.zeros.flowed(array, op.out, created=False)
        picks = [s for a, s in zip(op.args[1:], args[1:]) if self.ty(a).ndim]
        if len(picks) == 2:                               # entries picked in pairs
            return out + [ast.Expr(helper("add_at_pairs", Sym(self.adj(array)), *picks, g).node)]
        if picks and len(args) == 3:                      # x[i, idx] or x[idx, j]: one line
            i, j = args[1].node, args[2].node
            line = [ast.Slice(), j] if self.ty(op.args[1]).ndim else [i, ast.Slice()]
            line = Sym(self.adj(array))[Sym(ast.Tuple(line, ast.Load()))]
            return out + [ast.Expr(helper("add_at", line, picks[0], g).node)]
        if picks:                                         # rows picked by an index array
            return out + [ast.Expr(helper("add_at", Sym(self.adj(array)), args[1], g).node)]
        target = Sym(self.adj(array))[index_expr(op.params["index"], args[1:])].node
        target.ctx = ast.Store()
        return out + [aug_add(target, g)]

    def backward_store(self, op):
        array, value = op.args[0], op.args[1]
        args = [self.sym(a) for a in op.args]
        slot = Sym(self.adj(array))[index_expr(op.params["index"], args[2:])]
        slot_ty = self.slot_type(op)
        out = []
        if isinstance(value, str) and value in self.plan.active:
            c = slot.method("copy") if slot_ty.is_array else slot
            if value == array:   # `b[:] = b`: take the slot's adjoint before clearing it
                held = self.names.fresh(self.adj(array) + "_slot")
                out.append(assign(held, c))
                c = Sym(held)
            c = fit(c, value, self.ty(value), slot_ty, self.plan.shape_of.get(value))
            out.extend(self.accumulate(value, -c if op.gate == "store_sub" else c, array))
        if op.gate == "store":
            target = slot.node
            target.ctx = ast.Store()
            zero = ast.Assign([target], ast.Constant(0.0))
            # `b[:] = b`: the slot's adjoint is cleared before it flows back into b itself
            out = out[:-1] + [zero] + out[-1:] if value == array and out else out + [zero]
        return out

    def slot_type(self, op):
        from .infer import index as index_type
        from .graph import Op as IROp
        probe = IROp(None, "index", op.args[:1] + op.args[2:], op.params, op.where)
        return index_type(probe, *[self.ty(a) for a in probe.args])

    def accumulate(self, name, c, source):
        """Statements adding `c`, computed from the adjoint of `source`, to `name`'s adjoint."""
        adj = self.adj(name)
        self.zeros.flowed(name, source, created=name not in self.initialized | self.plan.mutable)
        if name in self.plan.mutable or (name in self.owned and name in self.initialized):
            return [aug_add(ast.Name(adj, ast.Store()), c)]
        if name not in self.initialized:
            self.initialized.add(name)
            if name in self.owned and self.tys[name].is_array:
                return [assign(adj, np_.zeros_like(Sym(name))), aug_add(ast.Name(adj, ast.Store()), c)]
            return [assign(adj, c)]
        if self.tys[name].is_array:
            return [assign(adj, Sym(adj) + c)]
        return [aug_add(ast.Name(adj, ast.Store()), c)]


def with_finite_checks(code, op):
    """`code` with a check after each adjoint update that raises naming the gate and line."""
    out = []
    for stmt in code:
        out.append(stmt)
        if isinstance(stmt, ast.If):       # a rule skipped where its adjoint is zero
            stmt.body = with_finite_checks(stmt.body, op)
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else getattr(stmt, "target", None)
        if target is None or isinstance(target, ast.Tuple):
            continue
        value = copy_as_load(target)
        message = (f"NaN or inf in the backward of gate `{op.gate}` at {op.where.filename}:"
                   f"{op.where.line}: {op.where.text.strip()}")
        test = ast.UnaryOp(ast.Not(), helper("all_finite", Sym(value)).node)
        error = ast.Call(ast.Name("FloatingPointError", ast.Load()), [ast.Constant(message)], [])
        out.append(ast.If(test, [ast.Raise(error, None)], []))
    return out


def copy_as_load(node):
    clone = ast.parse(ast.unparse(node), mode="eval").body
    return clone


def fit(c, arg, arg_ty, out_ty, dims=None):
    """Undo broadcasting: sum the contribution `c` down to the shape of `arg` (given by the
    names `dims` when the backward has its shape but not its value)."""
    if out_ty is None or not out_ty.is_array:
        return c
    if not arg_ty.is_array:
        return np_.sum(c)
    if dims:
        return helper("unbroadcast_to", c, tuple_([Sym(d) for d in dims]))
    return helper("unbroadcast", c, Sym(arg))


def may_broadcast(arg_ty, ty):
    """False when `arg` already has the output's shape: the other inputs are all scalars."""
    others = list(ty.args)
    others.remove(arg_ty)
    return arg_ty.ndim < ty.out.ndim or any(o.ndim for o in others)


def _first_defs(block):
    first = {}
    for op, _ in _walk_ops(block):
        if op.out is not None:
            first.setdefault(op.out, op)
    return first


def _self_update(op):
    return op.out in names_in(op.args)


def _contains_active(region, active):
    return any(is_active_op(op, active) for op, _ in _walk_ops(children_flat(region)))


def children_flat(region):
    return [s for child in children(region) for s in child]


def _walk_ops(block):
    from .graph import walk
    for stmt, loops in walk(block):
        if isinstance(stmt, Op):
            yield stmt, loops


def _blocks(block):
    yield block
    for s in block:
        for child in children(s):
            yield from _blocks(child)


FORWARD_STATEMENT = {Op: Sweep.forward_op, For: Sweep.forward_for, While: Sweep.forward_while,
                     If: Sweep.forward_if, Return: Sweep.forward_return}
BACKWARD_REGION = {For: Sweep.backward_for, While: Sweep.backward_while, If: Sweep.backward_if}
