from rim_monai.networks import LearnedGradientDescent
from tests.networks.cases import NetworkCase

CASES = [
    NetworkCase(
        "lgd",
        lambda c, complex_: LearnedGradientDescent(c, complex_, iterations=3, features=(8, 8)),
        iterations=3,
    ),
    NetworkCase(
        "lgd-shared",
        lambda c, complex_: LearnedGradientDescent(c, complex_, iterations=3, features=(8, 8), share_weights=True),
        iterations=3,
        any_iterations=True,
    ),
]
