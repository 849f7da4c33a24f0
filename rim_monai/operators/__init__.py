"""Forward models ``A`` as batched torch autograd operators with exact adjoints.

See ``docs/operators.md`` for each operator's formula, shapes and an example.
"""

from rim_monai.operators.base import AdjointOperator, LinearOperator, check_tensor
from rim_monai.operators.imaging import Identity
from rim_monai.operators.likelihood import GaussianLikelihood

# -- further operator modules register their public names below (one import line each) --
