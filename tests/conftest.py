"""Shared test set-up: a seeded RNG per test, one intra-op thread, and the ``slow`` mark for server tests.

The tensors in the tests are tiny, so extra threads mostly spin; on a shared 2-core CI machine one thread is
both faster and steadier.

``python -m pytest -m "not slow"`` is the fast subset. Besides the tests marked ``slow`` in their files, every
test that launches the app (it uses a ``server`` / ``served`` fixture) and every browser test is marked here, so
a new server test is slow without anyone remembering to say so.
"""

import pytest
import torch

torch.set_num_threads(1)

SERVER_FIXTURES = {"server", "served"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)
