"""Frontend: a Python function's source -> graph IR (`graph.Graph`).

Guarantees: every statement of the result is an `Op` of a known gate or a
structured region; names assigned only in straight-line code are in SSA form
(a reassigned `z` becomes `z_1`); names assigned inside loops or branches, and
arrays written element-wise, keep one name ("mutable"). Calls to the user's own
plain functions are inlined. Anything outside the subset raises `SrcdiffError`
pointing at the user's line.
"""
import ast
import types

import numpy as np

from . import calls, exits, unset
from .errors import SrcdiffError, UndefinedName
from .graph import Const, For, Graph, If, Op, Return, While
from .returns import single_return
from .source import (NameAllocator, all_names, assigned_names, check_signature, environment,
                     is_docstring, mutable_names, parse)

BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow",
          ast.MatMult: "matmul", ast.FloorDiv: "floordiv", ast.Mod: "mod"}
CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}
UNARYOPS = {ast.USub: "neg", ast.UAdd: "copy", ast.Not: "not"}
BOOLEAN_BITOPS = {ast.BitAnd: "and", ast.BitOr: "or"}
CONSTANT_ARRAY_SIZE = 64     # global arrays up to this size are written into the code
AUGSTORE = {ast.Add: "store_add", ast.Sub: "store_sub"}

UNSUPPORTED_STATEMENTS = {
    ast.With: "`with` blocks", ast.Try: "`try` blocks", ast.ClassDef: "classes",
    ast.FunctionDef: "nested function definitions", ast.Global: "`global` statements",
    ast.Nonlocal: "`nonlocal` statements", ast.Delete: "`del` statements",
    ast.Import: "imports inside the function", ast.ImportFrom: "imports inside the function",
ast.AsyncFunctionDef: "async functions",
}
UNSUPPORTED_EXPRESSIONS = {
    ast.Lambda: "lambdas", ast.ListComp: "list comprehensions", ast.DictComp: "dict comprehensions",
    ast.SetComp: "set comprehensions", ast.GeneratorExp: "generator expressions",
    ast.Dict: "dicts", ast.Set: "sets", ast.List: "lists", ast.Yield: "`yield`",
    ast.YieldFrom: "`yield from`", ast.Await: "`await`", ast.JoinedStr: "strings",
    ast.Starred: "`*` unpacking", ast.NamedExpr: "`:=`",
}


def signature(fn):
    """(argument names, Where of the `def`) of a user function, its body not read."""
    node, where = parse(fn)
    check_signature(node, where)
    return [a.arg for a in node.args.args], where(node)


def lower(fn):
    """Lower a user function to a `Graph`."""
    node, where = parse(fn)
    check_signature(node, where)
    params = [a.arg for a in node.args.args]
    names = NameAllocator(all_names(node))
    lowerer = Lowerer(fn, where, names, {p: p for p in params}, stack=(fn,))
    lowerer.mutable = mutable_names(node.body)
    body, result = lowerer.lower_function_body(node)
    graph = Graph(fn.__name__, params, lowerer.prelude + body, result, where(node).filename)
    graph.where = where(node)
    graph.names = names
    return graph


class Lowerer:
    """Walks one function body, appending IR statements to the current block."""

    def __init__(self, fn, where, names, scope, stack, prefix=""):
        self.fn, self.where, self.names, self.stack, self.prefix = fn, where, names, stack, prefix
        self.env = environment(fn)
        self.scope = dict(scope)       # user name -> current IR operand
        self.block = []
        self.mutable = set()
        self.mutable_all = set()
        self.loop_depth = 0
        self.returned = None
        self.owned = set()             # IR names this function's own assignments write
        self.locals = set()            # names the body assigns: never a global (Python's scoping)
        self.unset_reads = {}          # id(Name node) -> name, for reads of a maybe-unset name
        self.unset_flags = {}          # such a name -> its flag's name
        self.prelude = []              # small global arrays, made once at the function's start
        self.constant_arrays = {}      # id of such an array -> its IR name

    # ---- errors -------------------------------------------------------
    def fail(self, message, node, hint=None):
        raise SrcdiffError(message, self.where(node), hint)

    # ---- statements -----------------------------------------------------
    def lower_function_body(self, node):
        self.function_node = node
        body = [s for s in node.body if not is_docstring(s)]
        body = single_return(body, self.names)
        self.mutable |= mutable_names(body)     # the result a return in a branch now sets
        body = self.flag_unset_reads(body)
        self.locals = assigned_names(body)
        for i, stmt in enumerate(body):
            if isinstance(stmt, ast.Return):
                if i != len(body) - 1:
                    self.fail("code after `return` is never run", body[i + 1])
                self.returned = self.result_of(stmt)
                self.block.append(Return(self.returned, self.where(stmt)))
            else:
                self.statement(stmt)
        if self.returned is None:
            self.fail("the function has no `return` at its end", node,
                      hint="end a called function with `return <the values it computes>`, "
                           "and bind them where it is called" if self.prefix else
                           "end the function with `return <scalar>`")
        return self.block, self.returned

    def flag_unset_reads(self, body):
        """`body` with flags for the names it may read before they are set (see unset.py)."""
        self.unset_reads = unset.possibly_unset_reads(body, self.scope)
        names = sorted(set(self.unset_reads.values()))
        self.unset_flags = {n: self.names.fresh(f"{n}_is_set") for n in names}
        self.mutable |= set(self.unset_flags.values())
        return unset.with_set_flags(body, self.unset_flags) if names else body

    def result_of(self, stmt):
        """The returned operand; a tuple of operands for an inlined function returning several."""
        value = stmt.value
        if value is None:
            self.fail("the function must return a value", stmt)
        if isinstance(value, ast.Tuple):
            if not self.prefix:
                self.fail("`grad` needs a function returning one scalar; this returns a tuple",
                          value, hint="return one value (e.g. a weighted sum), or differentiate "
                                      "each output with its own function")
            return tuple(self.expr(v, None) for v in value.elts)
        return self.expr(value, None)

    def statement(self, stmt):
        handler = STATEMENTS.get(type(stmt))
        if handler is None:
            what = UNSUPPORTED_STATEMENTS.get(type(stmt), f"`{type(stmt).__name__}` statements")
            hint = "return once, at the end of the function" if isinstance(stmt, ast.Return) else None
            self.fail(f"{what} are not supported", stmt, hint)
        handler(self, stmt)

    def block_of(self, stmts):
        outer, self.block = self.block, []
        for s in stmts:
            if isinstance(s, ast.Return):
                self.fail("this `return` cannot be moved to the end of the function", s,
                          hint="returns in branches and loops move to the end, but not a bare "
                               "`return`, one of another number of values, one in a `for ... "
                               "else` or in a `while True:` inside another loop: assign the "
                               "result to a variable and return it once at the end")
            self.statement(s)
        inner, self.block = self.block, outer
        return inner

    def assign(self, stmt):
        first, *others = stmt.targets
        if others and not all(isinstance(t, ast.Name) for t in stmt.targets):
            self.fail("chained assignment `a = b = ...` is supported to names only", stmt,
                      hint="assign the value to a name, then set the others from it")
        self.assign_to(first, stmt.value, stmt)
        for other in others:       # `a = b = value`: one value, both names (as in Python)
            self.assign_to(other, ast.copy_location(ast.Name(first.id, ast.Load()), first), stmt)

    def ann_assign(self, stmt):
        if stmt.value is None:
            return
        self.assign_to(stmt.target, stmt.value, stmt)

    def assign_to(self, target, value, stmt):
        if isinstance(target, ast.Name):
            out = self.define(target.id)
            operand = self.expr(value, out)
            if operand != out:
                self.emit("copy", [operand], {}, value, out=out)
            self.scope[target.id] = out
        elif isinstance(target, ast.Tuple):
            self.unpack(target, value, stmt)
        elif isinstance(target, ast.Subscript):
            array = self.array_name(target.value)
            index_args, layout = self.index(target.slice)
            operand = self.stored(target.value, self.expr(value, None))
            self.emit("store", [array, operand] + index_args, {"index": layout}, stmt, out=None)
        else:
            self.fail("this assignment target is not supported", target)

    def store(self, target, operand, stmt, params=None):
        """`array[index] = operand` for a subscript target."""
        array = self.array_name(target.value)
        index_args, layout = self.index(target.slice)
        operand = self.stored(target.value, operand)
        self.emit("store", [array, operand] + index_args, {"index": layout, **(params or {})}, stmt,
                  out=None)

    def stored(self, array, operand):
        """`operand`, about to be stored into the array the name node `array` names; read through
        `assigned` where that array may not be set yet (the store would then write into the
        backward's empty placeholder)."""
        if id(array) not in self.unset_reads:
            return operand
        return self.checked_set(array.id, operand, array)

    def checked_set(self, name, operand, node):
        """`assigned(operand, name_is_set, 'name')`: `operand`, or UnboundLocalError if no
        assignment to `name` ran."""
        flag = self.scope[self.unset_flags[name]]
        return self.emit("assigned", [operand, flag], {"name": name}, node)

    def unpack(self, target, value, stmt):
        names = target.elts
        if isinstance(value, ast.Tuple) and len(value.elts) == len(names) \
                and all(isinstance(n, (ast.Name, ast.Subscript)) for n in names):
            # all values are taken before any target is set: `a, b = b, a` and
            # `y[0], y[2] = y[2], y[0]` swap
            operands = [self.fixed(self.expr(v, None), v) for v in value.elts]
            for n, o in zip(names, operands):
                if isinstance(n, ast.Subscript):
                    self.store(n, o, stmt, {"swap": True})
                    continue
                out = self.define(n.id)
                self.emit("copy", [o], {}, stmt, out=out)
                self.scope[n.id] = out
            return
        if not all(isinstance(n, ast.Name) for n in names):
            self.fail("only names can be unpacked", target,
                      hint="set each target on its own line, or unpack a tuple of the same length")
        if isinstance(value, ast.Attribute) and value.attr == "shape":
            array = self.expr(value.value, None)
            for k, n in enumerate(names):
                out = self.define(n.id)
                self.emit("dim", [array], {"axis": k, "rank": len(names)}, stmt, out=out)
                self.scope[n.id] = out
        elif isinstance(value, ast.Call):
            operands = calls.lower_call(self, value, None)
            count = len(operands) if isinstance(operands, tuple) else 1
            if count == len(names):
                operands = [self.fixed(o, value) for o in operands]
            if count != len(names):
                self.fail(f"`{ast.unparse(value.func)}` returns {count} value(s), and {len(names)} "
                          "names are unpacked", value)
            for n, o in zip(names, operands):
                out = self.define(n.id)
                self.emit("copy", [o], {}, stmt, out=out)
                self.scope[n.id] = out
        else:
            self.unpack_array(names, value, stmt)

    def unpack_array(self, names, value, stmt):
        """`a, b = v` of an array: its entries (the rows of a matrix) along the first axis,
        of which it must have exactly as many as there are names, as Python checks."""
        array = self.fixed(self.expr(value, None), value)
        if isinstance(array, Const) or isinstance(array, tuple):
            self.fail("tuple unpacking needs a tuple of the same length, an array, `x.shape` or "
                      "a call to your own function returning several values", value)
        length = self.emit("dim", [array], {"axis": 0}, stmt)
        fits = self.emit("eq", [length, Const(len(names))], {}, stmt)
        message = f"an array unpacked into {len(names)} names needs {len(names)} entries " \
                  "along its first axis"
        self.emit("asserted", [fits], {"message": message}, stmt)
        for k, n in enumerate(names):
            out = self.define(n.id)
            self.emit("index", [array, Const(k)], {"index": (("at",),)}, stmt, out=out)
            self.scope[n.id] = out

    def aug_assign(self, stmt):
        op = BINOPS.get(type(stmt.op))
        if op is None:
            self.fail("this augmented assignment is not supported", stmt)
        target = stmt.target
        if isinstance(target, ast.Subscript):
            array = self.array_name(target.value)
            index_args, layout = self.index(target.slice)
            value = self.stored(target.value, self.expr(stmt.value, None))
            gate = AUGSTORE.get(type(stmt.op))
            if gate:
                self.emit(gate, [array, value] + index_args, {"index": layout}, stmt, out=None)
                return
            old = self.emit("index", [array] + index_args, {"index": layout}, stmt)
            new = self.emit(op, [old, value], {}, stmt)
            self.emit("store", [array, new] + index_args, {"index": layout}, stmt, out=None)
        elif isinstance(target, ast.Name):
            old = self.read(target.id, target)
            value = self.expr(stmt.value, None)
            out = self.define(target.id)
            # NumPy updates an array in place here; aliases.py checks nobody else sees it
            self.emit(op, [old, value], {"inplace": True}, stmt, out=out)
            self.scope[target.id] = out
        else:
            self.fail("this augmented assignment target is not supported", target)

    def for_loop(self, stmt):
        if stmt.orelse:
            self.fail("`for ... else` is not supported", stmt)
        it = self.unreversed(stmt.iter)
        shared = self.read_elsewhere(stmt)
        if not (isinstance(it, ast.Call) and self.static_value(it.func) in (range, reversed)):
            stmt = self.over_entries(stmt)
            it = stmt.iter
        if not (isinstance(it, ast.Call) and self.static_value(it.func) is range):
            self.fail("this `for` loop runs over something srcdiff cannot iterate", it,
                      hint="loop over `range(...)`, `reversed(range(...))`, an array, "
                           "`enumerate(x)` or `zip(x, y)`")
        if not isinstance(stmt.target, ast.Name):
            self.fail("the loop variable must be a single name", stmt.target)
        if it.keywords or not 1 <= len(it.args) <= 3:
            self.fail("`range` takes 1 to 3 positional arguments here", it)
        bounds = [self.fixed(self.expr(a, None), a) for a in it.args]
        start, stop, step = {1: lambda b: (Const(0), b[0], Const(1)),
                             2: lambda b: (b[0], b[1], Const(1)),
                             3: lambda b: tuple(b)}[len(bounds)](bounds)
        if isinstance(step, Const) and (not isinstance(step.value, int) or step.value == 0):
            self.fail("the step of `range` must be a nonzero integer", it)
        body = stmt.body
        if stmt.target.id in assigned_names(body) or stmt.target.id in shared:
            index, body = self.counted_apart(stmt.target, body)
        else:
            index = self.define(stmt.target.id)
            self.scope[stmt.target.id] = index
        self.own_assigned(body)
        body, broke = self.loop_body(body)
        loop = For(index, start, stop, step, body, self.where(stmt), exit=broke)
        if broke:
            loop.counter = self.names.fresh("trips")
        self.block.append(loop)

    def read_elsewhere(self, loop):
        """The loop variables of `loop` that the function reads outside it (before, after, in
        its bounds, or in an enclosing loop): the backward, which reruns the loop counting
        down, would leave them at its first value, so such a loop counts in a name of its own.
        Reads in the body of another loop over the same name are that loop's own."""
        targets = loop.target.elts if isinstance(loop.target, ast.Tuple) else [loop.target]
        names = {t.id for t in targets if isinstance(t, ast.Name)}
        enclosing = self.enclosing(loop)
        skipped = {id(n) for s in loop.body for n in ast.walk(s)}
        for other in ast.walk(self.function_node):
            if isinstance(other, ast.For) and other is not loop and id(other) not in enclosing \
                    and {n.id for n in ast.walk(other.target) if isinstance(n, ast.Name)} & names:
                skipped |= {id(n) for s in other.body for n in ast.walk(s)}
        return {n.id for n in ast.walk(self.function_node) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load) and n.id in names and id(n) not in skipped}

    def enclosing(self, node):
        """Ids of the statements of the function that contain `node`."""
        parents = {id(child): parent for parent in ast.walk(self.function_node)
                   for child in ast.iter_child_nodes(parent)}
        found = set()
        while id(node) in parents:
            node = parents[id(node)]
            found.add(id(node))
        return found

    def over_entries(self, stmt):
        """`for v in x`, `for i, v in enumerate(x[, start])` and `for a, b in zip(x, y)` over arrays
        as a loop over `range`, the body starting with `v = x[i]` (x taken once, before)."""
        it, target = stmt.iter, stmt.target
        callee = self.static_value(it.func) if isinstance(it, ast.Call) else None
        counted = callee is enumerate and 1 <= len(it.args) + len(it.keywords) <= 2 and it.args \
            and all(k.arg == "start" for k in it.keywords) and isinstance(target, ast.Tuple) \
            and len(target.elts) == 2 and isinstance(target.elts[0], ast.Name)
        start = None if not counted else it.args[1] if len(it.args) == 2 else \
            it.keywords[0].value if it.keywords else None        # enumerate(x, start)
        inner = it.args[0] if counted else None
        if isinstance(inner, ast.Call) and self.static_value(inner.func) is zip \
                and inner.args and not inner.keywords and isinstance(target.elts[1], ast.Tuple) \
                and len(target.elts[1].elts) == len(inner.args):       # enumerate(zip(x, y))
            counter, targets, sources = target.elts[0], target.elts[1].elts, inner.args
        elif counted:
            counter, targets, sources = target.elts[0], [target.elts[1]], it.args[:1]
        elif callee is zip and it.args and not it.keywords and isinstance(target, ast.Tuple) \
                and len(target.elts) == len(it.args):
            counter, targets, sources = None, target.elts, it.args
        elif callee is None and not isinstance(it, (ast.List, ast.Tuple, ast.Constant)):
            counter, targets, sources = None, [target], [it]
        else:
            return stmt
        names = []
        for source in sources:
            if isinstance(source, ast.Name) and source.id not in assigned_names(stmt.body):
                names.append(source)        # read as it is at each step, as NumPy iterates
                continue
            name = f"{ast.unparse(source)} (iterated)"          # not a Python name: no clash
            self.scope[name] = self.fixed(self.expr(source, None), source)
            names.append(ast.copy_location(ast.Name(name, ast.Load()), source))
        numbered = []
        if start is not None:       # enumerate(x, start): the number runs `start` ahead
            position = self.names.fresh("k")
            numbered = [ast.Assign([counter], ast.BinOp(ast.Name(position, ast.Load()), ast.Add(),
                                                        start))]
            counter = ast.Name(position, ast.Store())
        if counter is None:
            counter = ast.Name(self.names.fresh("k"), ast.Store())
        lengths = [ast.Call(ast.Name("len", ast.Load()), [n], []) for n in names]
        trips = lengths[0] if len(lengths) == 1 else ast.Call(ast.Name("min", ast.Load()), lengths, [])
        starts = numbered + [ast.Assign([t], ast.Subscript(n, ast.Name(counter.id, ast.Load()),
                                                           ast.Load()))
                             for t, n in zip(targets, names)]
        loop = ast.For(ast.Name(counter.id, ast.Store()),
                       ast.Call(ast.Name("range", ast.Load()), [trips], []), starts + stmt.body, [])
        for node in [loop] + starts + [trips, loop.iter]:
            for part in ast.walk(node):
                if not hasattr(part, "lineno"):
                    ast.copy_location(part, stmt)
        return loop

    def unreversed(self, it):
        """`reversed(range(a, b, s))` as the range counting down, `range(last, a - s, -s)`
        (`range(b - 1, a - 1, -1)` for s = 1); any other iterable as it is."""
        if not (isinstance(it, ast.Call) and self.static_value(it.func) is reversed
                and len(it.args) == 1 and not it.keywords):
            return it
        inner = it.args[0]
        if not (isinstance(inner, ast.Call) and self.static_value(inner.func) is range
                and 1 <= len(inner.args) <= 3 and not inner.keywords):
            return it
        args = list(inner.args)
        start, stop = (ast.Constant(0), args[0]) if len(args) == 1 else args[:2]
        step = args[2] if len(args) == 3 else ast.Constant(1)
        try:
            s = ast.literal_eval(step)
        except ValueError:
            s = None
        if type(s) is not int or s == 0:
            self.fail("the step of `range` must be a nonzero integer constant", step,
                      hint="the backward runs the loop in reverse and needs the step's sign")

        def num(value):
            return ast.Constant(value) if value >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-value))

        def plus(a, value):
            return ast.BinOp(a, ast.Add() if value >= 0 else ast.Sub(), ast.Constant(abs(value)))
        if abs(s) == 1:
            last = plus(stop, -s)
        else:   # a + ((b - a - sign) // s) * s, the last value the range gives
            span = plus(ast.BinOp(stop, ast.Sub(), start), -1 if s > 0 else 1)
            last = ast.BinOp(start, ast.Add(), ast.BinOp(ast.BinOp(span, ast.FloorDiv(), num(s)),
                                                         ast.Mult(), num(s)))
        down = ast.Call(inner.func, [last, plus(start, -s), num(-s)], [])
        for node in ast.walk(down):
            if not hasattr(node, "lineno"):
                ast.copy_location(node, it)
        return down

    def counted_apart(self, target, body):
        """(index, body) for a loop whose body rebinds its variable: the loop counts in a name
        of its own, and the body starts by setting the variable from it (as Python does)."""
        index = self.names.fresh(target.id)
        self.owned.add(index)
        counter = f"{target.id} (loop counter)"       # not a Python name: no clash
        self.scope[counter] = index
        start = ast.Assign([ast.Name(target.id, ast.Store())], ast.Name(counter, ast.Load()))
        for node in ast.walk(start):
            ast.copy_location(node, target)
        return index, [start] + body

    def loop_body(self, stmts):
        """The lowered body of a loop, and the name of its break flag ("" if it cannot break)."""
        broke = ""
        if exits.contains_exit(stmts):
            skip = self.names.fresh("skip")
            broke = self.names.fresh("broke") if exits.contains_break(stmts) else ""
            self.mutable |= {skip, broke} - {""}
            stmts = exits.rewrite_body(stmts, skip, broke or self.names.fresh("unused"))
            if broke:
                self.statement(exits._set(broke, False, stmts[0]))
        self.loop_depth += 1
        body = self.block_of(stmts)
        self.loop_depth -= 1
        return body, broke and self.scope[broke]

    def while_loop(self, stmt):
        if stmt.orelse:
            self.fail("`while ... else` is not supported", stmt)
        self.own_assigned(stmt.body)
        outer, self.block = self.block, []
        test = self.expr(stmt.test, None)
        test_block, self.block = self.block, outer
        body, broke = self.loop_body(stmt.body)
        counter = self.names.fresh("trips")
        self.block.append(While(test_block, test, body, self.where(stmt), counter, exit=broke))

    def fixed(self, operand, node):
        """A copy of `operand` if it names a mutable variable (its value may change later)."""
        if isinstance(operand, str) and operand in self.mutable_all:
            return self.emit("copy", [operand], {}, node)
        return operand

    def if_branch(self, stmt):
        test = self.fixed(self.expr(stmt.test, None), stmt.test)
        self.own_assigned(stmt.body + stmt.orelse)
        body = self.block_of(stmt.body)
        orelse = self.block_of(stmt.orelse)
        self.block.append(If(test, body, orelse, self.where(stmt)))

    def assertion(self, stmt):
        """`assert test, "message"`: a check that the forward and the gradient both run."""
        test = self.expr(stmt.test, None)
        message = stmt.msg.value if isinstance(stmt.msg, ast.Constant) else ast.unparse(stmt.test)
        self.emit("asserted", [test], {"message": str(message)}, stmt)

    def printing(self, call):
        """`print("loss", x)`: printed where it runs, by the forward and the gradient (whose
        forward runs it once per call), as the function would."""
        if call.keywords:
            self.fail("`print` takes values and string constants here, no keywords", call)
        parts, operands = [], []
        for arg in call.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                parts.append(arg.value)
                continue
            if isinstance(arg, ast.JoinedStr):
                self.fail("f-strings are not supported in `print`", arg,
                          hint='print text and values apart: print("loss", x)')
            parts.append(None)
            operands.append(self.expr(arg, None))
        self.emit("printed", operands, {"parts": tuple(parts)}, call, out=None)

    def raising(self, stmt):
        """`raise ValueError("message")`: raised by the forward and the gradient where it runs,
        as a failed assert is, with the exception's name and message."""
        exc = stmt.exc
        if exc is None:
            self.fail("a bare `raise` is not supported", stmt)
        kind = exc.func if isinstance(exc, ast.Call) else exc
        text = exc.args[0] if isinstance(exc, ast.Call) and exc.args else None
        if isinstance(text, ast.JoinedStr):     # its text, the values it formats as written
            message = "".join(p.value if isinstance(p, ast.Constant) else "{" + ast.unparse(p.value) + "}"
                              for p in text.values)
        else:
            message = text.value if isinstance(text, ast.Constant) else ast.unparse(text) if text else ""
        self.emit("asserted", [Const(False)], {"message": f"{ast.unparse(kind)}: {message}"}, stmt)

    def expression_statement(self, stmt):
        if is_docstring(stmt):
            return
        call = stmt.value if isinstance(stmt.value, ast.Call) else None
        if call is not None and isinstance(call.func, ast.Name) and call.func.id == "print":
            return self.printing(call)
        if call is not None:
            self.fail(f"the result of `{ast.unparse(call.func)}(...)` is unused: srcdiff "
                      "differentiates the values calls return, not changes they make in place",
                      stmt, hint="make the function return what it changes and bind it: "
                                 "`x = f(x, ...)`")
        self.fail("an expression whose value is unused has no effect here", stmt,
                  hint="assign its result to a variable")

    def loop_exit(self, stmt):
        word = "break" if isinstance(stmt, ast.Break) else "continue"
        self.fail(f"`{word}` outside a loop", stmt)

    # ---- names ------------------------------------------------------------
    def define(self, name):
        """The IR name a new assignment to user name `name` writes."""
        if name in self.mutable and self.scope.get(name) in self.owned:
            return self.scope[name]
        ir = name if name not in self.scope and not self.prefix else self.names.fresh(name)
        if name in self.mutable:
            self.mutable_all.add(ir)
        self.owned.add(ir)
        return ir

    def own_assigned(self, stmts):
        """Before a loop or branch: copy the arguments it reassigns into names of their own.

        An argument (or a value passed to an inlined function) keeps its IR name; a loop
        that reassigns it needs one name for every iteration, distinct from the caller's.
        """
        for name in sorted(assigned_names(stmts) & self.mutable):
            current = self.scope.get(name)
            if current is not None and current not in self.owned:
                out = self.define(name)
                self.emit("copy", [current], {}, stmts[0], out=out)
                self.scope[name] = out

    def read(self, name, node):
        if name in self.scope and id(node) in self.unset_reads:
            return self.checked_set(name, self.scope[name], node)
        if name in self.scope:
            return self.scope[name]
        if name in self.locals:
            self.fail(f"`{name}` is read before it is assigned (it is a local variable: the function "
                      "assigns it elsewhere)", node,
                      hint=f"give `{name}` a value before this line, before the loop if a loop carries it "
                           f"(e.g. `{name} = 0.0`)")
        if name in self.env:
            value = self.env[name]
            if isinstance(value, bool) or isinstance(value, (int, float)):
                return Const(value)
            if isinstance(value, (np.floating, np.integer, np.bool_)):
                return Const(value.item())
            if isinstance(value, np.ndarray):
                return self.constant_array(name, value, node)
            if isinstance(value, tuple) and value and all(
                    isinstance(v, (int, float, np.integer, np.floating)) for v in value):
                return self.constant_array(name, np.array(value), node, key=id(value))
            self.fail(f"`{name}` is a {type(value).__name__}, not a number or array variable", node,
                      hint="pass arrays as arguments; globals may only be numeric constants")
        raise UndefinedName(f"`{name}` is not defined here", self.where(node))

    def constant_array(self, name, value, node, key=None):
        """A small global (or closure) array, or tuple of numbers, a constant like a global
        number: written into the code as `np.array([...])` at the function's start, with the
        values it has at the first call."""
        key = id(value) if key is None else key
        if key in self.constant_arrays:
            return self.constant_arrays[key]
        if value.dtype.kind not in "fiu":
            self.fail(f"`{name}` is a {value.dtype} array from outside the function (a global or a "
                      "closure variable)", node, hint=f"pass `{name}` as an argument; srcdiff takes "
                      "global arrays of numbers as constants")
        if value.ndim > 2 or value.size > CONSTANT_ARRAY_SIZE:
            self.fail(f"`{name}` is an array from outside the function (a global or a closure "
                      f"variable) of {value.size} {value.dtype} entries", node,
                      hint=f"pass `{name}` as an argument; srcdiff takes global arrays as constants "
                           f"up to {CONSTANT_ARRAY_SIZE} numbers, in one or two dimensions")
        if value.ndim == 0:
            return Const(value.item())
        dtype = value.dtype.name if value.dtype.kind == "f" else "int64"
        items = [Const(v) for v in value.astype(dtype).ravel().tolist()]
        out = self.names.fresh(name)
        self.prelude.append(Op(out, "array", tuple(items), {"shape": value.shape, "dtype": dtype},
                               self.where(node)))
        self.constant_arrays[key] = out
        return out

    def array_name(self, node):
        if isinstance(node, ast.Subscript):
            inner = ast.unparse(node.value)
            self.fail(f"a write through chained indexing (`{ast.unparse(node)}[...] = ...`)", node,
                      hint=f"index once, e.g. `{inner}[i, j] = ...` for `{inner}[i][j] = ...`")
        if not isinstance(node, ast.Name) or node.id not in self.scope:
            self.fail("only local arrays can be written into", node)
        return self.scope[node.id]

    def static_value(self, node):
        """The Python object a `np.exp`-like expression names, or None if it is not static."""
        if isinstance(node, ast.Name):
            if node.id in self.scope:
                return None
            return self.env.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.static_value(node.value)
            if isinstance(base, types.ModuleType):
                return getattr(base, node.attr, None)
        return None

    # ---- expressions ----------------------------------------------------
    def emit(self, gate, args, params, node, out=None):
        out = self.names.temp() if out is None and gate not in ("store", "store_add", "store_sub",
                                                                "printed") else out
        self.block.append(Op(out, gate, tuple(args), dict(params), self.where(node)))
        return out

    def expr(self, node, target):
        handler = EXPRESSIONS.get(type(node))
        if handler is None:
            what = UNSUPPORTED_EXPRESSIONS.get(type(node), f"`{type(node).__name__}` expressions")
            self.fail(f"{what} are not supported", node, hint=EXPRESSION_HINTS.get(type(node)))
        operand = handler(self, node, target)
        if isinstance(operand, tuple):       # `state = step(state)` of a helper returning two
            return self.as_array(list(operand), node, target)
        return operand

    def tuple_value(self, node, target):
        """`state = (x, v)`, `c = (0.0, 0.5, 1.0)`: a tuple kept as a value is an array of its
        parts (numbers, or arrays of one shape), indexed and unpacked as the tuple would be."""
        return self.as_array([self.expr(e, None) for e in node.elts], node, target)

    def as_array(self, operands, node, target):
        if not operands:
            self.fail("an empty tuple is not supported", node)
        return self.emit("array", operands, {"shape": (len(operands),), "dtype": None, "tuple": True},
                         node, target)

    def name(self, node, target):
        return self.read(node.id, node)

    def constant(self, node, target):
        if isinstance(node.value, (bool, int, float)):
            return Const(node.value)
        if isinstance(node.value, str):
            self.fail("strings are not supported (nor dicts indexed by name)", node,
                      hint="pass options as numbers or booleans (`mean=True`), or write a "
                           "function per option; pass arrays as arguments of their own")
        self.fail(f"constants of type {type(node.value).__name__} are not supported", node,
                  hint="only numbers are allowed in differentiated code")

    def binop(self, node, target):
        gate = BINOPS.get(type(node.op))
        params = {}
        if type(node.op) in BOOLEAN_BITOPS:     # `(r < rc) & mask`: booleans only (infer checks)
            gate, params = BOOLEAN_BITOPS[type(node.op)], {"bitwise": True}
        if gate is None:
            self.fail(f"the operator `{type(node.op).__name__}` is not supported", node)
        left, right = self.expr(node.left, None), self.expr(node.right, None)
        return self.emit(gate, [left, right], params, node, target)

    def unaryop(self, node, target):
        operand = self.expr(node.operand, None)
        gate = UNARYOPS.get(type(node.op))
        if isinstance(node.op, ast.Invert):     # `~mask`: booleans only (infer checks)
            return self.emit("not", [operand], {"bitwise": True}, node, target)
        if isinstance(operand, Const) and gate == "neg":
            return Const(-operand.value)
        return self.emit(gate, [operand], {}, node, target)

    def compare(self, node, target):
        """`a < b`, and `a < b <= c` as `a < b and b <= c` with b evaluated once."""
        gates = [CMPOPS.get(type(op)) for op in node.ops]
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Is, ast.IsNot)) \
                and isinstance(node.comparators[0], ast.Constant) and node.comparators[0].value is None:
            gate = "is_none" if isinstance(node.ops[0], ast.Is) else "is_not_none"
            return self.emit(gate, [self.expr(node.left, None)], {}, node, target)   # see nones.py
        if None in gates:
            self.fail("`is` and `in` comparisons are not supported (but `x is None`)", node,
                      hint="compare values with `==`, `<`, ... (joined with `or`)")
        operands = [self.expr(node.left, None)] + [self.expr(c, None) for c in node.comparators]
        last = len(gates) - 1
        result = None
        for k, gate in enumerate(gates):
            out = target if k == last and not k else None
            test = self.emit(gate, [operands[k], operands[k + 1]], {}, node, out)
            result = test if result is None else \
                self.emit("and", [result, test], {}, node, target if k == last else None)
        return result

    def boolop(self, node, target):
        gate = "and" if isinstance(node.op, ast.And) else "or"
        operands = [self.expr(v, None) for v in node.values]
        result = operands[0]
        for i, o in enumerate(operands[1:]):
            result = self.emit(gate, [result, o], {}, node, target if i == len(operands) - 2 else None)
        return result

    def ifexp(self, node, target):
        test = self.fixed(self.expr(node.test, None), node.test)
        out = target or self.names.temp()
        self.mutable_all.add(out)
        body = self.branch_value(node.body, out)
        orelse = self.branch_value(node.orelse, out)
        self.block.append(If(test, body, orelse, self.where(node)))
        return out

    def branch_value(self, node, out):
        outer, self.block = self.block, []
        operand = self.expr(node, out)
        if operand != out:
            self.emit("copy", [operand], {}, node, out)
        inner, self.block = self.block, outer
        return inner

    def attribute(self, node, target):
        value = self.static_value(node)
        if isinstance(value, float):
            return Const(value)
        if calls.is_computed(self, node.value):
            return calls.array_attribute(self, node, target)
        self.fail(f"`{ast.unparse(node)}` is not supported here", node)

    def subscript(self, node, target):
        base = node.value
        if isinstance(base, ast.Attribute) and base.attr == "shape":
            array = self.expr(base.value, None)
            k = node.slice
            if not (isinstance(k, ast.Constant) and isinstance(k.value, int)) and not (
                    isinstance(k, ast.UnaryOp) and isinstance(k.operand, ast.Constant)):
                self.fail("`x.shape[k]` needs a constant k", node)
            axis = ast.literal_eval(k)
            return self.emit("dim", [array], {"axis": axis}, node, target)
        array = self.expr(base, None)
        args, layout = self.index(node.slice)
        return self.emit("index", [array] + args, {"index": layout}, node, target)

    def index(self, node):
        """(operands, layout) of an index expression; layout has one entry per position."""
        parts = node.elts if isinstance(node, ast.Tuple) else [node]
        operands, layout = [], []
        for p in parts:
            if isinstance(p, ast.Slice):
                bounds = (p.lower, p.upper, p.step)
                layout.append(("slice",) + tuple(b is not None for b in bounds))
                operands.extend(self.expr(b, None) for b in bounds if b is not None)
            elif isinstance(p, ast.Constant) and p.value is None or self.is_newaxis(p):
                layout.append(("new",))
            elif isinstance(p, ast.Constant) and p.value is Ellipsis:
                self.fail("`...` in an index is not supported", p, hint="write the `:` out")
            else:
                layout.append(("at",))
                operands.append(self.expr(p, None))
        return operands, tuple(layout)

    def is_newaxis(self, node):
        return (isinstance(node, ast.Attribute) and node.attr == "newaxis"
                and self.static_value(node.value) is np)

    def call(self, node, target):
        return calls.lower_call(self, node, target)


EXPRESSION_HINTS = {
    ast.Tuple: "a tuple can be unpacked where it is made (`a, b = b, a`, `x, v = step(x, v)`), "
               "not kept in a name: keep each part in a name of its own",
    ast.Lambda: "define a named function with `def` and call it",
    ast.ListComp: "write a `for` loop filling an array made with np.zeros",
    ast.List: "build arrays with np.zeros / np.empty and fill them",
    ast.Dict: "pass the values as separate arguments",
    ast.JoinedStr: "remove string handling from the differentiated function",
}

STATEMENTS = {
    ast.Assign: Lowerer.assign, ast.AnnAssign: Lowerer.ann_assign, ast.AugAssign: Lowerer.aug_assign,
    ast.For: Lowerer.for_loop, ast.While: Lowerer.while_loop, ast.If: Lowerer.if_branch,
    ast.Expr: Lowerer.expression_statement, ast.Pass: lambda self, stmt: None,
    ast.Assert: Lowerer.assertion, ast.Raise: Lowerer.raising,
    ast.Break: Lowerer.loop_exit, ast.Continue: Lowerer.loop_exit,  # only outside loops
}
EXPRESSIONS = {
    ast.Name: Lowerer.name, ast.Constant: Lowerer.constant, ast.BinOp: Lowerer.binop,
    ast.UnaryOp: Lowerer.unaryop, ast.Compare: Lowerer.compare, ast.BoolOp: Lowerer.boolop,
    ast.IfExp: Lowerer.ifexp, ast.Attribute: Lowerer.attribute, ast.Subscript: Lowerer.subscript,
    ast.Call: Lowerer.call, ast.Tuple: Lowerer.tuple_value,
}

