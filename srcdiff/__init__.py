"""srcdiff: compiled source-to-source reverse-mode automatic differentiation for numeric Python."""
from . import nn
from .api import Gradient, grad, value_and_grad
from .check import GradientCheckError, check_grad
from .compile import clear_cache
from .errors import SrcdiffError

__version__ = "0.1.0"
__all__ = ["grad", "value_and_grad", "check_grad", "GradientCheckError", "clear_cache", "SrcdiffError", "Gradient", "nn"]
