"""The helpers generated code imports, by module. Listed here, apart from their numba
implementations, so that generating code does not import numba."""

RUNTIME_NAMES = (
    "unbroadcast", "unbroadcast_to",
    "sum_over", "sum_over_keep", "mean_over", "mean_over_keep",
    "max_over", "max_over_keep", "min_over", "min_over_keep", "max_all", "min_all",
    "spread", "spread_all", "tie_mask", "tie_mask_all", "tie_share_all",
    "add_tie_share_all", "tie_share_at", "add_tie_share_at", "add_outer", "vecmat", "matvec",
    "vecmat_into", "matvec_into", "vecmat_fill", "matvec_fill",
    "softmax_over", "log_softmax_over", "logsumexp_over_keep",
    "softmax_all", "log_softmax_all", "logsumexp_all",
    "reserve", "range_last", "base_slope", "exponent_slope", "erf", "erfc", "asserted",
    "assigned", "broadcast_dim", "as_dtype_of", "apart", "reversed_cumsum", "cumprod_adjoint",
    "median_adjoint", "interp_slope", "interp_knots_adjoint", "interp_values_adjoint",
    "product_of_others", "spread_diagonal", "cofactors", "cholesky_adjoint", "add_at",
    "pick_pairs", "add_at_pairs", "keeps_shape", "lgamma", "digamma", "unsorted", "roll_along",
    "tanh", "exp", "log",
)
# functions of srcdiff's own (srcdiff.vectorised), written for float arrays in place of NumPy's
VECTORISED = ("exp", "log", "tanh")
TAPE_NAMES = ("wins", "push_array", "push_extremes", "pop_extremes", "pop_array1", "pop_array2",
              "pop_array3", "all_finite")
