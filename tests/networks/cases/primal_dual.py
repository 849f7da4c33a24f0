from rim_monai.networks import LearnedPrimalDual
from tests.networks.cases import NetworkCase

CASES = [
    NetworkCase(
        "lpd",
        lambda c, complex_: LearnedPrimalDual(c, complex_, iterations=3, n_primal=3, n_dual=3, features=(8, 8)),
        iterations=3,
    ),
    NetworkCase(
        "lpd-fbp-shared",
        lambda c, complex_: LearnedPrimalDual(
            c, complex_, iterations=3, n_primal=2, n_dual=2, features=(8,), init="fbp", share_weights=True
        ),
        iterations=3,
        any_iterations=True,
    ),
]
