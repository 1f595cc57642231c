"""The gradient object's calls, `g(...)` and `g.forward(...)`, with the user's own parameters.

A call through `*args, **kwargs` builds a tuple and a dict on every call: for a small
compiled gradient that was a third of what the call adds to the compiled code. The entry
point generated here takes the user's parameter names and defaults, so Python binds the
arguments (and reports a bad call) exactly as it does for the user's function, and it tries
the last signature's compiled code first.
"""
import ast
import linecache

from .source import NameAllocator

TEMPLATE = '''
def entry(gradient):
    def call(ARGS):
        fast = gradient.FAST
        if fast is not None:
            try:
                return fast[0](ARGS)
            except TypeError:     # not the types of the last call: checked below
                pass
            except Exception as error:
                raise gradient._translated(error, fast[1], (ARGS,)) from None
        return gradient.CHECKED((ARGS,))
    return call
'''


def entry_point(gradient, fn, fast, checked, doc):
    """A function with `fn`'s name, parameters and defaults that runs `gradient.<fast>`, a
    (compiled function, its source) pair or None, and `gradient.<checked>(args)` when that
    is None or refuses the argument types."""
    params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount])
    name = fn.__name__ if fn.__name__.isidentifier() else "gradient_call"
    tree = Substitute(params, name, fast, checked).visit(ast.parse(TEMPLATE))
    filename = f"<srcdiff entry {fast} of {name}>"
    text = ast.unparse(ast.fix_missing_locations(tree))
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace = {}
    exec(compile(text, filename, "exec"), namespace)
    call = namespace["entry"](gradient)
    call.__defaults__ = fn.__defaults__
    call.__qualname__ = getattr(fn, "__qualname__", name)
    call.__doc__ = doc
    return call


class Substitute(ast.NodeTransformer):
    """Fills the template: ARGS -> the parameters, FAST/CHECKED -> attribute names, and the
    template's own names renamed where a parameter takes them."""

    def __init__(self, params, name, fast, checked):
        self.params = params
        self.names = {"call": name, "FAST": fast, "CHECKED": checked}
        taken = NameAllocator(set(params) | {name})
        for own in ("gradient", "fast", "error"):
            self.names[own] = taken.fresh(own)

    def visit_arguments(self, node):
        if node.args and node.args[0].arg == "ARGS":
            node.args = [ast.arg(p) for p in self.params]
        else:
            node.args = [ast.arg(self.names.get(a.arg, a.arg)) for a in node.args]
        return node

    def expanded(self, nodes):
        if any(isinstance(n, ast.Name) and n.id == "ARGS" for n in nodes):
            return [ast.Name(p, ast.Load()) for p in self.params]
        return [self.visit(n) for n in nodes]

    def visit_Call(self, node):
        node.func = self.visit(node.func)
        node.args = self.expanded(node.args)
        return node

    def visit_Tuple(self, node):
        node.elts = self.expanded(node.elts)
        return node

    def visit_Name(self, node):
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_Attribute(self, node):
        node.value = self.visit(node.value)
        node.attr = self.names.get(node.attr, node.attr)
        return node

    def visit_FunctionDef(self, node):
        node.name = self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_ExceptHandler(self, node):
        node.name = node.name and self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node
