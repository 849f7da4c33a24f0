from rim_monai.networks import RIM
from tests.networks.cases import NetworkCase


def _rim(**kwargs):
    def build(in_channels, complex_):
        return RIM(in_channels=in_channels, complex_=complex_, steps=3, **kwargs)

    return build


CASES = [
    NetworkCase("rim-compact", _rim(architecture="compact", features=(8, 8)), steps=3, any_steps=True),
    NetworkCase("rim-paper", _rim(architecture="paper", features=(8, 16)), steps=3, any_steps=True),
    NetworkCase("rim-gdn", _rim(architecture="compact", variant="gdn", features=(8, 8)), steps=3, any_steps=True),
    NetworkCase("rim-ffn", _rim(architecture="compact", variant="ffn", features=(8, 8)), steps=3, any_steps=True),
]
