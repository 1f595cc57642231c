"""Indexing with an array: rows picked by an integer vector, entries picked by a mask.

`E[idx]` and `E[idx, :]` gather rows; an index may repeat, and then the adjoints of its
rows add up (`add_at`, as np.add.at). `x[mask]` takes the entries of a vector where the
mask is true, or the rows of a matrix for a mask along its first axis. Writes take masks
only (`x[x < 0] = 0.0`): through an index vector that repeats, NumPy keeps one write of
several, which has no gradient rule. numba takes one index array, a vector, so a mask of
a whole matrix is refused with the forms that work instead.
"""
from .errors import SrcdiffError
from .infer import Ty

FULL = ("slice", False, False, False)


def picked_type(op, x, positions, writing=False):
    """The type of `x[pick]` / `x[pick, :]` with an index array `pick` (for `writing`, x's)."""
    layout, pick = op.params["index"], positions[0] if positions else None
    if pick is None or layout[0] != ("at",) or any(p != FULL for p in layout[1:]) \
            or len(positions) != 1:
        raise SrcdiffError("an index array must be the only index, or be followed by `:` only: "
                           "x[idx], x[idx, :], x[mask]", op.where,
                           hint="index the other axes apart, e.g. x[idx][:, j]")
    if pick.ndim == 1 and pick.dtype == "int64" and not writing:
        return Ty(x.dtype, x.ndim)
    if pick.ndim == 1 and pick.dtype == "bool":
        return Ty(x.dtype, x.ndim)
    if pick.dtype == "int64" and writing:
        raise SrcdiffError("writing through an index vector (x[idx] = v) is not supported: "
                           "where an index repeats, NumPy keeps one of the writes", op.where,
                           hint="write a loop: for k in range(idx.shape[0]): x[idx[k]] = v[k]")
    raise SrcdiffError(f"cannot index with a {pick}: an index array is a vector of integers, "
                       "or a vector of booleans along the first axis", op.where,
                       hint="for a mask of a whole matrix use np.where(mask, x, 0.0), or "
                            "x.ravel()[mask.ravel()]")


def has_array(types):
    return any(t.ndim for t in types)
