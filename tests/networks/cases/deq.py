from rim_monai.networks import DeepEquilibrium
from tests.networks.cases import NetworkCase

CASES = [
    NetworkCase(
        "deq-gradient",
        lambda c, complex_: DeepEquilibrium(c, complex_, mode="gradient", features=(8,), iterations=30, tol=1e-4),
        build_deprecated=lambda c, complex_: DeepEquilibrium(c, complex_, mode="gradient", features=(8,), max_iter=30,
                                                             tol=1e-4),
    ),
    NetworkCase(
        "deq-prox-jacobian-free",
        lambda c, complex_: DeepEquilibrium(
            c, complex_, mode="prox", features=(8,), iterations=30, tol=1e-4, backward="jacobian_free"
        ),
    ),
]
