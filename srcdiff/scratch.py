"""Matrix-vector products inside loops write into one buffer that every iteration reuses.

`t3 = vecmat(t2, Wx)`, read once by arithmetic (which makes a new array), becomes
`t3 = vecmat_into(t3, t2, Wx)`, with `t3 = np.empty((0,), np.float64)` before the loop:
the product's array is allocated once per loop rather than once per iteration.
"""
import ast

from .optimize import nested_blocks
from .sym import empty_array

INTO = {"vecmat": "vecmat_into", "matvec": "matvec_into"}
# readers that only read the product: their value is a new array
COPYING_READERS = (ast.BinOp, ast.UnaryOp)


def reuse_product_buffers(stmts, tys, counts):
    """Rewrite the products in the loops of `stmts` (recursively), in place."""
    readers = _readers(stmts)
    _rewrite(stmts, tys, counts, readers)


def _rewrite(stmts, tys, counts, readers):
    position = 0
    while position < len(stmts):
        loop = stmts[position]
        buffers = []
        if isinstance(loop, (ast.For, ast.While)):
            for stmt in loop.body:
                name = _reusable(stmt, tys, counts, readers)
                if name:
                    stmt.value.func.id = INTO[stmt.value.func.id]
                    stmt.value.args.insert(0, ast.Name(name, ast.Load()))
                    buffers.append(ast.Assign([ast.Name(name, ast.Store())],
                                              empty_array(tys[name].ndim, tys[name].dtype).node))
        stmts[position:position] = buffers
        position += len(buffers) + 1
    for block in nested_blocks(stmts):
        _rewrite(block, tys, counts, readers)


def _reusable(stmt, tys, counts, readers):
    """The name `stmt` sets to a product whose buffer the next iteration may reuse, or None."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id in INTO):
        return None
    name = stmt.targets[0].id
    operands = stmt.value.args
    if counts.get(name) != (1, 1) or not isinstance(readers.get(name), COPYING_READERS) \
            or name not in tys or not all(isinstance(a, ast.Name) and a.id in tys for a in operands):
        return None
    dtype = tys[name].dtype
    return name if all(tys[a.id].dtype == dtype for a in operands) else None


def _readers(stmts):
    """name -> the node that reads it (the last one found)."""
    readers = {}
    for stmt in stmts:
        for node in ast.walk(stmt):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
                    readers[child.id] = node
    return readers
