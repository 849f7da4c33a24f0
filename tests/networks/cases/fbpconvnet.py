from rim_monai.networks import FBPConvNet
from tests.networks.cases import NetworkCase

CASES = [
    NetworkCase("fbpconvnet", lambda c, complex_: FBPConvNet(c, complex_, channels=(8, 16), strides=(2,))),
]
