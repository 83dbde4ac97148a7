"""Shared test set-up: a seeded RNG per test and few threads (the CI machine has 2 cores)."""

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)
