"""np.interp(x, xp, fp): piecewise-linear interpolation, its type and its adjoint rule.

Between knots xp[j] <= x < xp[j + 1], z = fp[j] + s (x - xp[j]) with the slope
s = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]); outside the knots z is fp's end value (a
constant in x). At a knot, the slope is the one of the segment starting there (at the last
knot, of the segment ending there).
"""
from .errors import SrcdiffError
from .infer import TYPE_RULES, Ty
from .rules import rule
from .sym import helper


def interp_type(op, x, xp, fp):
    if xp.ndim != 1 or fp.ndim != 1 or not (xp.is_float or xp.dtype == "int64") \
            or not fp.is_float:
        raise SrcdiffError(f"np.interp(x, xp, fp) takes vectors of knots xp and float values fp, "
                           f"got xp: {xp}, fp: {fp}", op.where,
                           hint="fp of ints: convert it first, fp * 1.0")
    if x.dtype == "bool":
        raise SrcdiffError("np.interp(x, ...) takes numbers for x, not booleans", op.where)
    return Ty("float64", x.ndim)      # as NumPy, whatever the arguments' float type


TYPE_RULES["interp"] = interp_type


@rule("interp")
def interp(op, ty, g, z, x, xp, fp):
    """dx = g s; dfp: g (1 - t) at fp[j] and g t at fp[j + 1], with t = (x - xp[j]) /
    (xp[j + 1] - xp[j]) (all of g to the end value outside the knots); dxp: -g s (1 - t) at
    xp[j] and -g s t at xp[j + 1]."""
    return (g * helper("interp_slope", x, xp, fp), helper("interp_knots_adjoint", g, x, xp, fp),
            helper("interp_values_adjoint", g, x, xp, fp))
