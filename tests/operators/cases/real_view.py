from rim_monai.operators import RandomProjection, RealImageView
from tests.operators.cases import OperatorCase

CASES = [
    OperatorCase("real-view-fourier", lambda: RealImageView(RandomProjection((4, 5), 0.6, ensemble="fourier", seed=1))),
]
