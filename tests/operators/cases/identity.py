from rim_monai.operators import Identity
from tests.operators.cases import OperatorCase

CASES = [
    OperatorCase("identity-real", lambda: Identity((6, 5))),
    OperatorCase("identity-complex", lambda: Identity((4, 7), complex_=True), batch=(3,)),
]
