"""What the experiments share: repository paths, the machine, timing."""

import torch

from rim_monai.experiments.environment import REPOSITORY, SHARED_DATA, describe_machine, machine_line, timed


def test_paths_machine_and_timing():
    assert (REPOSITORY / "rim_monai").is_dir() and SHARED_DATA == REPOSITORY.parent / "shared" / "data"
    machine = describe_machine()
    assert machine["torch"] == torch.__version__ and machine["cpu_count"] >= 1
    assert torch.__version__ in machine_line() and "cores visible" not in machine_line(cores=False)
    value, seconds = timed(lambda: 6 * 7)
    assert value == 42 and seconds >= 0
