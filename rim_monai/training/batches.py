"""Seeded mini-batches of sample indices: every sample once per pass, in a fresh random order each pass."""

from __future__ import annotations

import torch

__all__ = ["ShuffledBatches"]


class ShuffledBatches:
    """An endless iterator of index batches over ``n`` samples, for an ignite ``Engine`` that indexes its data itself.

    A pass draws one permutation ``torch.randperm(n, generator=generator)`` and hands out its indices from the end,
    ``batch_size`` at a time; the last batch of a pass holds what is left (``n mod batch_size`` indices when that is
    not 0), then the next pass draws a new permutation. Only ``generator`` is used, never the global RNG, so a run is
    reproducible from its seed alone. The iterator is its own ``iter()``: an engine that restarts the data at a new
    epoch (``terminate_epoch``) continues the same stream.

    Args:
        n: number of samples (``>= 1``).
        batch_size: indices per batch (``>= 1``; capped at ``n``).
        seed: seed of the permutations.
        device: device of the index tensors.

    Raises:
        ValueError: naming ``n`` or ``batch_size`` when it is not a positive integer.

    Example:
        >>> batches = ShuffledBatches(5, 2, seed=0)
        >>> [len(next(batches)) for _ in range(4)]
        [2, 2, 1, 2]
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, device: str | torch.device | None = None) -> None:
        for name, value in (("n", n), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}.")
        self.n, self.batch_size, self.device = n, min(batch_size, n), device
        self.generator = torch.Generator().manual_seed(int(seed))
        self._order: list[int] = []

    def __iter__(self) -> "ShuffledBatches":
        return self

    def __next__(self) -> torch.Tensor:
        """The next ``(b,)`` int64 tensor of sample indices."""
        if not self._order:
            self._order = torch.randperm(self.n, generator=self.generator).tolist()
        count = min(self.batch_size, len(self._order))
        return torch.tensor([self._order.pop() for _ in range(count)], device=self.device)
