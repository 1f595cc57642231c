"""The graph IR: three-address statements inside structured regions.

A function body is a list of statements. `Op` is one gate application
(`t3 = mul(t1, t2)`), `For`/`While`/`If` hold nested blocks (loops stay loops),
`Return` ends the function. Operands are variable names (str) or `Const`.
Every statement carries the `Where` of the user's source line it comes from.
"""
from dataclasses import dataclass, field

from .errors import Where


@dataclass(frozen=True)
class Const:
    value: object

    def __repr__(self):
        return repr(self.value)


@dataclass
class Op:
    out: object            # target name, or None for stores
    gate: str
    args: tuple            # operands: str names or Const
    params: dict           # static parameters (axis, index layout, ...)
    where: Where


@dataclass
class For:
    index: str
    start: object
    stop: object
    step: object
    body: list
    where: Where
    exit: str = ""         # flag set by a `break` in the body ("" if none)
    counter: str = ""      # executed iterations, counted when the loop can break


@dataclass
class While:
    test_block: list       # statements computing the condition, run before each test
    test: object           # operand holding the condition
    body: list
    where: Where
    counter: str = ""      # name of the iteration counter the backward needs
    exit: str = ""         # flag set by a `break` in the body ("" if none)


@dataclass
class If:
    test: object
    body: list
    orelse: list
    where: Where


@dataclass
class Return:
    value: object
    where: Where


@dataclass
class Graph:
    name: str
    params: list           # argument names, in order
    body: list
    result: object = None  # the returned operand
    filename: str = ""
    source_lines: list = field(default_factory=list)


def walk(block):
    """Yield (statement, enclosing loops) for every statement, nested blocks included."""
    yield from _walk(block, ())


def _walk(block, loops):
    for stmt in block:
        yield stmt, loops
        if isinstance(stmt, (For, While)):
            if isinstance(stmt, While):
                yield from _walk(stmt.test_block, loops + (stmt,))
            yield from _walk(stmt.body, loops + (stmt,))
        elif isinstance(stmt, If):
            yield from _walk(stmt.body, loops)
            yield from _walk(stmt.orelse, loops)


def names_in(operands):
    """The variable names among operands (constants dropped)."""
    return [a for a in operands if isinstance(a, str)]


def uses_of(stmt):
    """The names a statement itself reads (each time it reads them): an op's arguments, a
    loop's bounds and exit flag, a test, a returned value; nested blocks not included."""
    if isinstance(stmt, Op):
        return names_in(stmt.args)
    if isinstance(stmt, For):
        return names_in((stmt.start, stmt.stop)) + ([stmt.exit] if stmt.exit else [])
    if isinstance(stmt, If):
        return names_in((stmt.test,))
    if isinstance(stmt, While):
        return names_in((stmt.test,)) + ([stmt.exit] if stmt.exit else [])
    if isinstance(stmt, Return):
        return names_in((stmt.value,))
    return []


def format_graph(graph):
    """A readable listing of the IR, one statement per line."""
    lines = [f"def {graph.name}({', '.join(graph.params)}):"]
    _format_block(graph.body, lines, "    ")
    return "\n".join(lines)


def _format_block(block, lines, pad):
    for stmt in block:
        if isinstance(stmt, Op):
            params = "".join(f", {k}={v!r}" for k, v in stmt.params.items())
            args = ", ".join(map(str, stmt.args))
            lines.append(f"{pad}{stmt.out} = {stmt.gate}({args}{params})")
        elif isinstance(stmt, For):
            lines.append(f"{pad}for {stmt.index} in range({stmt.start}, {stmt.stop}, {stmt.step}):")
            _format_block(stmt.body, lines, pad + "    ")
        elif isinstance(stmt, While):
            lines.append(f"{pad}while:")
            _format_block(stmt.test_block, lines, pad + "  ? ")
            lines.append(f"{pad}  ? test {stmt.test}")
            _format_block(stmt.body, lines, pad + "    ")
        elif isinstance(stmt, If):
            lines.append(f"{pad}if {stmt.test}:")
            _format_block(stmt.body, lines, pad + "    ")
            lines.append(f"{pad}else:")
            _format_block(stmt.orelse, lines, pad + "    ")
        elif isinstance(stmt, Return):
            lines.append(f"{pad}return {stmt.value}")
