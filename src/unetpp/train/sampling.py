"""Where every random draw of a training run comes from: keys (seed, epoch, stream, index), the epoch order, and
the batch sampler that hands (epoch, index) keys to a dataset. Free of augmentation libraries, so both training
loops (and their worker processes) import it cheaply.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from unetpp.errors import InputError, expected_found

# Independent RNG streams derived from the run seed.
STREAM_AUGMENT = 1
STREAM_SHUFFLE = 2


def seed_sequence(seed: int, epoch: int, stream: int, index: int = 0) -> np.random.SeedSequence:
    """A SeedSequence for one (seed, epoch, stream, index) key; all run randomness is derived this way."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(stream), int(index)])


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of epoch `epoch`: a permutation of range(n) derived from (seed, epoch)."""
    return np.random.default_rng(seed_sequence(seed, epoch, STREAM_SHUFFLE)).permutation(n)


class EpochBatchSampler:
    """Batches of (epoch, index) keys: a permutation derived from (seed, epoch), last short batch dropped; with
    `max_batches` only the first that many batches of each epoch's permutation (a fresh random subset of the
    samples each epoch, for epochs shorter than one pass).

    Lives in the main process, so `set_epoch` works with persistent DataLoader workers.
    """

    def __init__(self, n: int, batch_size: int, seed: int, drop_last: bool = True,
                 max_batches: int | None = None) -> None:
        if batch_size < 1:
            raise InputError(expected_found("batch size", "a positive integer", batch_size))
        if drop_last and n < batch_size:
            raise InputError(expected_found("training samples", f"at least one batch ({batch_size})", n,
                                            "Lower --batch-size or use more training ids."))
        if max_batches is not None and max_batches < 1:
            raise InputError(expected_found("batches per epoch", "at least 1", max_batches))
        self.n, self.batch_size, self.seed, self.drop_last = n, batch_size, int(seed), drop_last
        self.max_batches = max_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        full = self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)
        return full if self.max_batches is None else min(full, self.max_batches)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        perm = epoch_permutation(self.n, self.seed, self.epoch)
        for b in range(len(self)):
            chunk = perm[b * self.batch_size:(b + 1) * self.batch_size]
            yield [(self.epoch, int(i)) for i in chunk]
