"""Shared test set-up: a seeded RNG per test and one intra-op thread.

The tensors in the tests are tiny, so extra threads mostly spin; on a shared 2-core CI machine one thread is
both faster and steadier.
"""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)
