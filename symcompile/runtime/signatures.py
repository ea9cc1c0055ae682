"""The exact types of the model kernels the runtime's compiled code calls through function pointers.

A kernel passed to a compiled runtime function is compiled (or loaded from its cache) for exactly this
signature: C-contiguous float64 arrays, as the module's argument checks make them.
"""

from numba import types

VECTOR = types.float64[::1]
MATRIX = types.float64[:, ::1]

# loss_and_grad(w, X, Y, grad) -> the mean loss; the gradient written into grad
LOSS_AND_GRAD = types.FunctionType(types.float64(VECTOR, MATRIX, MATRIX, VECTOR))
# residuals_and_jacobian(w, X, Y, r, J): the residuals written into r, their derivatives by the weights into J
RESIDUALS_AND_JACOBIAN = types.FunctionType(types.void(VECTOR, MATRIX, MATRIX, VECTOR, MATRIX))
