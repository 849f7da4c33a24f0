from rim_monai.networks import LearnedGradientDescent
from tests.networks.cases import NetworkCase

CASES = [
    NetworkCase(
        "lgd",
        lambda c, complex_: LearnedGradientDescent(c, complex_, iterations=3, features=(8, 8)),
        steps=3,
    ),
    NetworkCase(
        "lgd-shared",
        lambda c, complex_: LearnedGradientDescent(c, complex_, iterations=3, features=(8, 8), share_weights=True),
        steps=3,
        any_steps=True,
    ),
]
