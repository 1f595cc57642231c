"""Matrix gates: np.linalg.inv, det, slogdet, solve, cholesky; np.trace, diag, tril, triu; np.cross,
prod, roll; and np.sort, np.median, np.argmax and np.argmin.

Their types (added to infer.TYPE_RULES) and their adjoint rules (registered in rules.RULES,
which imports this module), each rule one small function reading as the math.
"""
import ast

from .errors import SrcdiffError
from .infer import TYPE_RULES, Ty, promote
from .rules import rule
from .sym import Sym, helper, linalg, np_


# ---- types ----------------------------------------------------------------------------
def _refuse(op, what, got, hint=None):
    raise SrcdiffError(f"{what}, got {', '.join(str(t) for t in got)}", op.where, hint=hint)


def _float_matrix(op, a, what):
    if a.ndim != 2 or not a.is_float:
        _refuse(op, f"{what} takes a 2-D float array", [a],
                hint="convert integers first, e.g. A * 1.0" if a.ndim == 2 else None)


def inverse_type(op, a):
    _float_matrix(op, a, "np.linalg.inv")
    return Ty(a.dtype, 2)


def cholesky_type(op, a):
    _float_matrix(op, a, "np.linalg.cholesky")
    return Ty(a.dtype, 2)


def det_type(op, a):
    _float_matrix(op, a, "np.linalg.det")
    return Ty(a.dtype, 0)


def slogdet_type(op, a):
    _float_matrix(op, a, "np.linalg.slogdet")
    return Ty(a.dtype, 0)


def solve_type(op, a, b):
    _float_matrix(op, a, "np.linalg.solve")
    if b.ndim not in (1, 2) or b.dtype != a.dtype:
        _refuse(op, "np.linalg.solve(A, b) takes a vector or matrix b of A's dtype", [a, b],
                hint="convert one of them with .astype(...)")
    return Ty(a.dtype, b.ndim)


def trace_type(op, a):
    if a.ndim != 2:
        _refuse(op, "np.trace takes a 2-D array", [a])
    return Ty(a.dtype, 0)


def prod_type(op, x):
    if not x.ndim:
        _refuse(op, "np.prod takes an array", [x], hint="for numbers, multiply them: a * b")
    return Ty("int64" if x.dtype == "bool" else x.dtype, 0)


def cross_type(op, a, b):
    if not (1 <= a.ndim <= 2 and 1 <= b.ndim <= 2):
        _refuse(op, "np.cross takes vectors or stacks of vectors (1-D or 2-D arrays)", [a, b])
    return Ty(promote(a.dtype, b.dtype), max(a.ndim, b.ndim))


def roll_type(op, x, shift):
    if not x.ndim or shift.ndim or shift.dtype != "int64":
        _refuse(op, "np.roll(x, shift) takes an array and an integer shift", [x, shift])
    axis = op.params.get("axis")
    if axis is not None and (x.ndim > 2 or not -x.ndim <= axis < x.ndim):
        _refuse(op, f"np.roll with axis={axis} takes a vector or a matrix here", [x],
                hint="for more dimensions, slice and join: np.concatenate((x[-1:], x[:-1]))")
    return x


def position_type(op, x):
    if not x.ndim:
        _refuse(op, f"np.{op.gate} takes an array", [x])
    return Ty("int64", 0)


def median_type(op, x):
    if not x.ndim or x.dtype == "bool":
        _refuse(op, "np.median takes an array of numbers", [x])
    return Ty("float32" if x.dtype == "float32" else "float64", 0)


def sort_type(op, x):
    if x.ndim != 1:
        _refuse(op, "np.sort takes a vector here", [x], hint="sort each row in a loop")
    return x


def diag_type(op, x):
    if x.ndim not in (1, 2):
        _refuse(op, "np.diag takes a 1-D array (to build a matrix) or a 2-D one (to read its "
                "diagonal)", [x])
    return Ty(x.dtype, 3 - x.ndim)


def triangle_type(op, x):
    if x.ndim != 2:
        _refuse(op, f"np.{op.gate} takes a 2-D array", [x])
    return x


TYPE_RULES.update({
    "inv": inverse_type, "det": det_type, "det_sign": slogdet_type, "logdet": slogdet_type, "solve": solve_type, "trace": trace_type,
    "cholesky": cholesky_type,
    "prod": prod_type, "cross": cross_type, "roll": roll_type, "diag": diag_type,
    "tril": triangle_type, "triu": triangle_type, "argmax": position_type,
    "argmin": position_type, "sort": sort_type, "median": median_type})


# ---- adjoint rules ----------------------------------------------------------------------
@rule("inv")
def inv(op, ty, g, z, a):
    """z = A^-1: dA = -z^T g z^T."""
    return (-(z.T @ g @ z.T),)


@rule("cholesky")
def cholesky(op, ty, g, z, a):
    """z = L, the lower factor of A = L L^T, read from A's lower triangle: with
    S = L^-T Phi(L^T g) L^-1 (Phi: the lower triangle, its diagonal halved), dA is S + S^T
    below the diagonal, S on it and zero above (Murray, 2016)."""
    return (helper("cholesky_adjoint", z, g),)


@rule("det")
def det(op, ty, g, z, a):
    """z = det(A): dA = g adj(A)^T, the cofactors (Jacobi's formula; z A^-T where A is
    invertible, and defined where it is singular too)."""
    return (g * helper("cofactors", a),)


@rule("logdet")
def logdet(op, ty, g, z, a):
    """z = log|det A|: dA = g A^-T, as cofactors / det (inf, not an error, where A is singular)."""
    return (g * (helper("cofactors", a) / linalg("det", a)),)


@rule("solve")
def solve(op, ty, g, z, a, b):
    """z = A^-1 b: db = A^-T g, dA = -db z^T."""
    db = linalg("solve", a.T, g)
    return (-np_.outer(db, z) if ty.args[1].ndim == 1 else -(db @ z.T)), db


@rule("trace")
def trace(op, ty, g, z, a):
    """z = sum_i A[i, i]: dA = g I."""
    return (g * np_.eye(a.attr("shape")[0], a.attr("shape")[1]),)


@rule("prod")
def prod(op, ty, g, z, x):
    """z = prod_j x[j]: dx[i] = g prod_{j != i} x[j] (exact where x has zeros)."""
    return (g * helper("product_of_others", x),)


@rule("cross")
def cross(op, ty, g, z, a, b):
    """z = a x b: da = b x g, db = g x a."""
    return np_.cross(b, g), np_.cross(g, a)


@rule("roll")
def roll(op, ty, g, z, x, shift):
    """z = x shifted by `shift`: dx = g shifted back."""
    axis = op.params.get("axis")
    if axis is None:
        return np_.roll(g, -shift), None
    return helper("roll_along", g, -shift, Sym(ast.Constant(axis))), None


@rule("sort")
def sort(op, ty, g, z, x):
    """z = x in increasing order: each entry of x gets the entry of g at its place in z."""
    return (helper("unsorted", g, x),)


@rule("median")
def median(op, ty, g, z, x):
    """z = the middle entry of x in sorted order (the mean of the two middle ones): g goes
    to it (g / 2 to each of them)."""
    return (helper("median_adjoint", g, x),)


@rule("diag")
def diag(op, ty, g, z, x):
    """z = np.diag(v, k) (a matrix): dv = g's k-th diagonal; z = np.diag(A, k) (a vector): dA
    holds g on its k-th diagonal and zeros elsewhere."""
    k = op.params["k"]
    if ty.args[0].ndim == 1:
        return (np_.diag(g, k) if k else np_.diag(g),)
    return (helper("spread_diagonal", g, x, k),)


@rule("tril", "triu")
def triangle(op, ty, g, z, x):
    """z = the triangle of A: dA = the same triangle of g."""
    k = op.params["k"]
    return (getattr(np_, op.gate)(g, k) if k else getattr(np_, op.gate)(g),)
