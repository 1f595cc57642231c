"""Reading a user's function: its source, its names, and where each line is.

Shared by the frontend and by the inlining of calls to the user's own functions.
"""
import ast
import builtins
import inspect
import linecache
import textwrap
import types

from .errors import SrcdiffError, Where


def plain_function(fn):
    """The Python function behind a numba-compiled one (`@numba.njit` keeps it as .py_func);
    anything else as it is."""
    inner = getattr(fn, "py_func", None)
    return inner if isinstance(inner, types.FunctionType) else fn


def source_of(fn):
    """The dedented source, file name and first line number of a plain Python function."""
    if not isinstance(fn, types.FunctionType):
        raise SrcdiffError(f"cannot differentiate {fn!r}: it is not a plain Python function",
                           hint="decorate a function defined with `def` in a file")
    if "__wrapped__" in vars(fn):
        raise SrcdiffError(f"`{fn.__qualname__}` is a wrapper a decorator made (with functools.wraps) "
                           f"around `{getattr(fn.__wrapped__, '__qualname__', fn.__wrapped__)}`: its "
                           "source is the wrapped function's, not the wrapper's code",
                           definition_site(fn), hint="differentiate a function defined with `def` without that decorator "
                                "(its original is `.__wrapped__` if the decorator does not change "
                                "the value)")
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        raise SrcdiffError(f"cannot read the source of {fn.__qualname__}",
                           hint="srcdiff needs the function's source: define it in a .py file "
                                "(not in a REPL or with exec)") from None
    return textwrap.dedent("".join(lines)), inspect.getsourcefile(fn) or "<unknown>", first


def definition_site(fn):
    """Where the `def` of `fn` is, from its code object (no source parsing needed)."""
    code = fn.__code__
    text = linecache.getline(code.co_filename, code.co_firstlineno).rstrip("\n")
    return Where(code.co_filename, code.co_firstlineno, len(text) - len(text.lstrip()), text)


def parse(fn):
    """(FunctionDef node, Where factory) for `fn`."""
    source, filename, first = source_of(fn)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        raise SrcdiffError(f"cannot read `{fn.__qualname__}` on its own from {filename}:{first}",
                           Where(filename, first, 0, source.splitlines()[0] if source else ""),
                           hint="define the function with `def` at module level") from None
    node = tree.body[0]
    if isinstance(node, ast.AsyncFunctionDef) or not isinstance(node, ast.FunctionDef):
        raise SrcdiffError(f"cannot differentiate {fn.__qualname__}: expected a `def` function",
                           hint="use a plain `def` function, not a lambda or async function")
    all_lines = source.splitlines()
    indent = len(inspect.getsourcelines(fn)[0][0]) - len(inspect.getsourcelines(fn)[0][0].lstrip())

    def where(n):
        line = getattr(n, "lineno", 1)
        text = all_lines[line - 1] if 0 < line <= len(all_lines) else ""
        return Where(filename, first + line - 1, getattr(n, "col_offset", 0) + indent, " " * indent + text)
    return node, where


def environment(fn):
    """Names visible to `fn`: its globals, builtins and closure cells."""
    env = dict(vars(builtins))
    env.update(fn.__globals__)
    if fn.__closure__:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                env[name] = cell.cell_contents
            except ValueError:
                pass
    return env


def check_signature(node, where):
    args = node.args
    bad = (args.vararg, args.kwarg) + tuple(args.kwonlyargs) + tuple(args.posonlyargs)
    for b in bad:
        if b:
            raise SrcdiffError("`*args`, `**kwargs`, keyword-only and positional-only arguments "
                               "are not supported", where(b if hasattr(b, "lineno") else node),
                               hint="give every argument a plain positional name")


def all_names(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {a.arg for a in node.args.args}


def mutable_names(body):
    """Names that cannot be put in SSA form: assigned in a loop or branch, or stored into."""
    mutable = set()

    def visit(stmts, nested):
        for s in stmts:
            for t in assigned_targets(s):
                if isinstance(t, ast.Name) and nested:
                    mutable.add(t.id)
                elif isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name):
                    mutable.add(t.value.id)
            if isinstance(s, (ast.For, ast.While, ast.If)):
                if isinstance(s, ast.For) and isinstance(s.target, ast.Name):
                    mutable.add(s.target.id)
                visit(s.body, True)
                visit(s.orelse, True)
    visit(body, False)
    return mutable


def assigned_names(stmts):
    """The plain names assigned anywhere in `stmts` (nested blocks and loop variables included)."""
    names = set()
    for stmt in stmts:
        for node in ast.walk(stmt):
            for t in assigned_targets(node):
                if isinstance(t, ast.Name):
                    names.add(t.id)
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return names


def assigned_targets(stmt):
    if isinstance(stmt, ast.Assign):
        out = []
        for t in stmt.targets:
            out.extend(t.elts if isinstance(t, ast.Tuple) else [t])
        return out
    if isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        return [stmt.target]
    return []


class NameAllocator:
    """Fresh, deterministic names that never clash with the user's."""

    def __init__(self, taken):
        self.taken = set(taken)
        self.temps = 0
        self.origin = {}      # fresh name -> the name it was made from

    def fresh(self, base):
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        if name != base:
            self.origin[name] = base
        return name

    def temp(self):
        while True:
            self.temps += 1
            name = f"t{self.temps}"
            if name not in self.taken:
                self.taken.add(name)
                return name


def is_docstring(stmt):
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(
        stmt.value.value, str)
