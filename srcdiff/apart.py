"""Gradients returned together are separate arrays.

Two adjoints may be one array: the rule of `x + y` hands its adjoint to both operands, and
`unbroadcast` returns its argument when no axis was broadcast, so `dx` and `dy` can be the
same memory, as can the gradients of an argument named twice in `wrt`. A caller updating
one in place must not change the other, so a returned gradient that may be an array an
earlier one may also be is passed through `apart`, which copies it if the memory is shared.

Which names may be which arrays is read off the finished gradient function: an
assignment from arithmetic or from a call known to make a new array starts a new array;
a name, a subscript, `.T`, a call passing its first argument through, and any other call
may give back an array already bound to a name it reads.
"""
import ast

from .scratch import COPYING_CALLS, PASSING_CALLS, called_name, writes_out


def keep_apart(body, returned, arrays):
    """Wrap the array gradients in tuple `returned` (the gradient function's returned
    tuple, in `body`; `arrays` tells which are arrays) that may share memory with an earlier
    one in `apart(...)`, in place."""
    sources = _sources(body)
    earlier = []
    for position, (grad, is_array) in enumerate(zip(returned.elts, arrays)):
        if not is_array or not isinstance(grad, ast.Name):
            continue                      # a number, or a new array: zeros, a converted copy
        reach = _reach(grad.id, sources)
        for other in earlier:
            if reach & _reach(other.id, sources):
                returned.elts[position] = ast.Call(ast.Name("apart", ast.Load()),
                                                   [returned.elts[position], other], [])
        earlier.append(grad)


def _sources(body):
    """name -> the names whose arrays an assignment to it may hand on."""
    sources = {}
    for node in (n for stmt in body for n in ast.walk(stmt)):
        if isinstance(node, ast.Assign):
            handed = _handed(node.value)
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        sources.setdefault(name.id, set()).update(handed)
    return sources


def _handed(value):
    """The names whose arrays `value` may be (or view)."""
    if isinstance(value, ast.Name):
        return {value.id}
    if isinstance(value, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Constant)):
        return set()
    if isinstance(value, ast.Subscript) or (isinstance(value, ast.Attribute) and value.attr == "T"):
        return _handed(value.value)
    if isinstance(value, ast.IfExp):
        return _handed(value.body) | _handed(value.orelse)
    if isinstance(value, ast.Call):
        called = called_name(value)
        if called in COPYING_CALLS and not writes_out(value, called):
            return set()
        if called in PASSING_CALLS:
            return _handed(value.args[0])
    return {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}


def _reach(name, sources):
    """`name` and every name whose array it may be, through chains of assignments."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(sources.get(current, ()))
    return seen
