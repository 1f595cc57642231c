"""Indexing with an array: rows picked by an integer vector, entries picked by a mask.

`E[idx]` and `E[idx, :]` gather rows; an index may repeat, and then the adjoints of its
rows add up (`add_at`, as np.add.at). `M[i, idx]` and `M[idx, j]` pick from one row or
column, their adjoints added back into that row or column. `P[rows, cols]` gathers entries
in pairs (the cross-entropy's `logp[np.arange(n), labels]`), their adjoints added back the
same way (`add_at_pairs`). `x[mask]` takes the entries of a vector where the mask is true,
or the rows of a matrix for a mask along its first axis. Writes take masks only (`x[x < 0] =
0.0`): through an index vector that repeats, NumPy keeps one write of several, which has no
gradient rule. numba takes one index array, a vector, so a mask of a whole matrix is refused
with the forms that work instead.
"""
from .errors import SrcdiffError
from .infer import Ty

FULL = ("slice", False, False, False)


def picked_type(op, x, positions, writing=False):
    """The type of `x[pick]` / `x[pick, :]` with an index array `pick`, or of `x[rows, cols]`
    (for `writing`, x's)."""
    layout, pick = op.params["index"], positions[0] if positions else None
    if paired(layout, positions):
        return pairs_type(op, x, positions, writing)
    if along_one_axis(layout, positions, x):
        if writing:
            _refuse_write(op, "an index vector (x[i, idx] = v)", "an index",
                          "for k in range(idx.shape[0]): x[i, idx[k]] = v[k]")
        return Ty(x.dtype, 1)
    if pick is None or layout[0] != ("at",) or any(p != FULL for p in layout[1:]) \
            or len(positions) != 1:
        raise SrcdiffError("an index array must be the only index, or be followed by `:` only: "
                           "x[idx], x[idx, :], x[mask], x[i, idx] and x[idx, j] of a matrix, or "
                           "x[rows, cols] with two of them", op.where,
                           hint="index the other axes apart, e.g. x[idx][:, 1:3]")
    if pick.ndim == 1 and pick.dtype == "int64" and not writing:
        return Ty(x.dtype, x.ndim)
    if pick.ndim == 1 and pick.dtype == "bool":
        return Ty(x.dtype, x.ndim)
    if pick.dtype == "int64" and writing:
        _refuse_write(op, "an index vector (x[idx] = v)", "an index",
                      "for k in range(idx.shape[0]): x[idx[k]] = v[k]")
    raise SrcdiffError(f"cannot index with a {pick}: an index array is a vector of integers, "
                       "or a vector of booleans along the first axis", op.where,
                       hint="for a mask of a whole matrix use np.where(mask, x, 0.0), or "
                            "x.ravel()[mask.ravel()]")


def paired(layout, positions):
    """True for `x[rows, cols]`: two index arrays, one per axis."""
    return layout == (("at",), ("at",)) and len(positions) == 2 and all(p.ndim for p in positions)


def along_one_axis(layout, positions, x):
    """True for `x[i, idx]` and `x[idx, j]` of a matrix: a number and an integer vector."""
    return x.ndim == 2 and layout == (("at",), ("at",)) and len(positions) == 2 \
        and sorted(p.ndim for p in positions) == [0, 1] \
        and all(p.dtype == "int64" for p in positions)


def pairs_type(op, x, positions, writing):
    """`x[rows, cols]` of a matrix with two integer vectors (entry k is x[rows[k], cols[k]])."""
    if x.ndim != 2 or any(p.ndim != 1 or p.dtype != "int64" for p in positions):
        raise SrcdiffError(f"two index arrays pick entries of a matrix with two integer vectors, "
                           f"got {x}[{positions[0]}, {positions[1]}]", op.where,
                           hint="x[rows, cols] with rows and cols of one length; otherwise loop")
    if writing:
        _refuse_write(op, "index vectors (x[rows, cols] = v)", "a pair",
                      "for k in range(rows.shape[0]): x[rows[k], cols[k]] = v[k]")
    return Ty(x.dtype, 1)


def _refuse_write(op, through, repeated, loop):
    raise SrcdiffError(f"writing through {through} is not supported: where {repeated} repeats, "
                       "NumPy keeps one of the writes", op.where, hint=f"write a loop: {loop}")


def has_array(types):
    return any(t.ndim for t in types)
