from rim_monai.networks import RIM
from tests.networks.cases import NetworkCase


def _rim(name: str = "iterations", **kwargs):
    def build(in_channels, complex_):
        return RIM(in_channels=in_channels, complex_=complex_, **{name: 3}, **kwargs)

    return build


def _case(name: str, **kwargs) -> NetworkCase:
    return NetworkCase(name, _rim(**kwargs), iterations=3, any_iterations=True, build_deprecated=_rim("steps", **kwargs))


CASES = [
    _case("rim-compact", architecture="compact", features=(8, 8)),
    _case("rim-paper", architecture="paper", features=(8, 16)),
    _case("rim-gdn", architecture="compact", variant="gdn", features=(8, 8)),
    _case("rim-ffn", architecture="compact", variant="ffn", features=(8, 8)),
    _case("rim-noise-input", architecture="compact", features=(8, 8), noise_input=True),
    _case("rim-gdn-noise-input", architecture="compact", variant="gdn", features=(8, 8), noise_input=True),
]
