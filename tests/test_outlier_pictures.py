"""The picture sets of the familiarity study: the synthetic outliers and the third held-out foreign set."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from synthetic_outliers import KINDS, SIDE, synthetic_picture, synthetic_pictures  # noqa: E402


def test_synthetic_pictures_are_seeded_varied_and_full_size() -> None:
    pictures = synthetic_pictures(2 * len(KINDS))
    assert [name.split("_", 1)[1] for name, _ in pictures[:len(KINDS)]] == list(KINDS)
    assert all(image.size == (SIDE, SIDE) and image.mode == "RGB" for _, image in pictures)
    again = synthetic_picture(3)[1]
    assert np.array_equal(np.asarray(again), np.asarray(pictures[3][1]))  # same index, same picture
    arrays = [np.asarray(image, dtype=np.float32) for _, image in pictures]
    assert all(array.std() > 1 for array in arrays)  # none is a blank canvas
    assert len({array.tobytes() for array in arrays}) == len(arrays)


@pytest.mark.slow
def test_third_foreign_set_is_new_and_complete() -> None:
    from second_foreign_set import BASES as SECOND
    from third_foreign_set import BASES, FACES, third_foreign_images

    pictures = third_foreign_images()
    assert len(pictures) == 4 * len(BASES) == 68
    assert not set(BASES) & set(SECOND)  # no base picture of the second set again
    assert not set(FACES) & {0, 25, 50, 75} and max(FACES) < 100  # other LFW faces than the second set's
    assert all(image.mode == "RGB" and min(image.size) >= 32 for _, image in pictures)
