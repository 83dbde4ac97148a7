"""Bad model cards are contained: each makes only its own model unavailable, with a reason naming the field,
when the catalog is listed (not later, when the card is rendered or the model is loaded)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from app_server import write_checkpoint

from senet.card_schema import CARD_SCHEMA, CardSchemaError, json_depth, validate_card
from senet.catalog import Catalog
from senet.checkpoint import read_card

pytestmark = pytest.mark.timeout(120)

# (card change, words the reason must contain)
BAD_CARDS = {
    "metrics_list": ({"metrics": []}, "metrics must be an object"),
    "data_list": ({"data": [1, 2]}, "data must be an object"),
    "profiles_list": ({"class_profiles": [1]}, "class_profiles must be an object"),
    "test_profiles_count": ({"class_profiles": {"blocks": ["SE_2_1"], "channels": [2], "test": {
        "split": "fold1 Test", "classes": {"A": {"count": -1, "mean": [[0.5, 0.5]], "std": [[0, 0]]}}}}},
        "class_profiles.test.classes.A.count"),
    "folds_text": ({"metrics": {"cv": {"folds": "abc", "accuracy": {"mean": 0.9}}}},
                   "metrics.cv.folds must be a whole number"),
    "description_number": ({"description": 5}, "description must be text"),
    "num_params_text": ({"num_params": "many"}, "num_params must be a whole number"),
    "std_zero": ({"std": [0, 0, 0]}, "std[0] must be a number in [0.001, 10]"),
    "tiny_resize_ratio": ({"resize_ratio": 1e-6}, "resize_ratio must be a number in [0.25, 1]"),
    "labels_text": ({"labels": "abcdef"}, "labels must be a list"),
    "huge_accuracy": ({"metrics": {"test": {"accuracy": 1e308}}}, "metrics.test.accuracy must be a number in [0, 1]"),
    "cv_accuracy_over_one": ({"metrics": {"cv": {"folds": 5, "x.accuracy": {"mean": 3.0}}}},
                             "metrics.cv.x.accuracy.mean must be a number in [0, 1]"),
    "long_title": ({"title": "x" * 5000}, "title is too long"),
    "many_labels": ({"labels": [f"class {i}" for i in range(2000)]}, "labels must have at most 1000 entries"),
    "huge_label": ({"labels": ["a" * 1000, "b"]}, "labels[0] is too long"),
    "unknown_top_level": ({"colour": "red"}, "unknown model card fields"),
    "nan_mean": ({"mean": [0.5, "NaN", 0.5]}, "mean[1] must be a number"),
    "deep_free_section": ({"training": {"recipe": json.loads('{"x": ' * 15 + "1" + "}" * 15)}},
                          "nested too deeply"),
}


def _good_card(directory: Path) -> dict:
    return json.loads((directory / "good.json").read_text())


@pytest.fixture(scope="module")
def shelf(tmp_path_factory) -> Path:
    """One good checkpoint, and one copy of it per bad card (same weights, edited card)."""
    directory = tmp_path_factory.mktemp("checkpoints")
    weights = write_checkpoint(directory, "good", "se_resnet18", seed=1, size=32)
    card = _good_card(directory)
    for name, (changes, _) in BAD_CARDS.items():
        (directory / f"{name}.safetensors").symlink_to(weights.name)
        (directory / f"{name}.json").write_text(json.dumps({**card, **changes}))
    (directory / "deep.safetensors").symlink_to(weights.name)
    (directory / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (directory / "big.safetensors").symlink_to(weights.name)
    (directory / "big.json").write_text(json.dumps({**card, "limitations": "x" * 3 * 2**20}))
    os.symlink("loop_b.safetensors", directory / "loop_a.safetensors")
    os.symlink("loop_a.safetensors", directory / "loop_b.safetensors")
    (directory / "loop_a.json").write_text(json.dumps(card))
    return directory


def test_every_bad_card_is_unavailable_with_its_reason_and_the_good_one_is_default(shelf):
    catalog = Catalog(shelf, device="cpu")
    assert catalog.available() == ["good"] and catalog.default == "good"
    for name, (_, reason) in BAD_CARDS.items():
        entry = catalog.entries[name]
        assert not entry.available and reason in entry.error, (name, entry.error)
        assert str(shelf) not in entry.error
    assert "nested too deeply" in catalog.entries["deep"].error
    assert "too large (over 2 MB)" in catalog.entries["big"].error
    assert "broken or looping link" in catalog.entries["loop_a"].error
    assert catalog.entries["huge_accuracy"].display_name == "huge_accuracy (unavailable)"


def test_the_shipped_cards_fit_the_schema():
    shipped = Path(__file__).resolve().parent.parent / "checkpoints"
    for card in sorted(shipped.glob("*.json")):
        read_card(card)  # raises on any schema problem


def test_extra_keys_in_open_sections_are_allowed_but_bounded():
    card = {"arch": "se_resnet18", "labels": ["a", "b"],
            "metrics": {"calibration": {"temperature": 1.4, "ece_raw": 0.08, "ece_calibrated": 0.03,
                                        "nll_raw": 0.9, "bins": [{"confidence": 0.9, "accuracy": 0.8, "count": 12}]}},
            "training": {"world_size": 4, "anything_new": {"nested": [1, 2, "three"]}},
            "data": {"positive": "Monkeypox", "provenance": "converted from a state dict"}}
    validate_card(card)
    with pytest.raises(CardSchemaError, match="metrics.calibration.temperature must be a number in"):
        validate_card({**card, "metrics": {"calibration": {"temperature": 0}}})
    with pytest.raises(CardSchemaError, match=r"metrics.calibration.bins\[0\].accuracy must be a number in \[0, 1\]"):
        validate_card({**card, "metrics": {"calibration": {"bins": [{"accuracy": 2}]}}})
    with pytest.raises(CardSchemaError, match="training.world_size must be a whole number"):
        validate_card({**card, "training": {"world_size": 0.5}})
    with pytest.raises(CardSchemaError, match="data.anything is too long"):
        validate_card({**card, "data": {"anything": "x" * 20_000}})


def test_new_dataclass_fields_without_a_schema_entry_are_bounded_json():
    assert "familiarity" not in CARD_SCHEMA.fields
    validate_card({"arch": "a", "labels": ["a", "b"], "familiarity": {"mean": 1.0}}, fields=["familiarity"])
    with pytest.raises(CardSchemaError, match="familiarity must be a finite number"):
        validate_card({"arch": "a", "labels": ["a", "b"], "familiarity": float("inf")}, fields=["familiarity"])


def test_json_depth_is_measured_without_parsing():
    assert json_depth('{"a": [1, {"b": "[[[[not counted"}]}') == 3
    assert json_depth("[" * 100_000 + "]" * 100_000) == 100_000


def test_card_json_puts_number_lists_on_one_line_and_round_trips():
    from senet.card import ModelCard

    card = ModelCard(arch="se_resnet18", labels=["a", "b"], title="[\n 1,\n 2\n] in a title",
                     metrics={"bins": [0.1, -2e-05, 3], "nested": [[1, 2], [3.5, 4]], "words": ["x", "y"]},
                     class_profiles={"classes": {"a": [[0.25, 0.5], [1.0, 0.0]]}})
    text = card.to_json()
    assert json.loads(text) == card.to_dict()
    assert '"bins": [0.1, -2e-05, 3]' in text and "[0.25, 0.5]" in text
    assert '"title": "[\\n 1,\\n 2\\n] in a title"' in text  # strings are left as they are
    assert '"words": [\n' in text  # lists of strings keep one item per line
    shipped = sorted((Path(__file__).resolve().parents[1] / "checkpoints").glob("*.json"))
    assert all(path.read_text(encoding="utf-8") == read_card(path).to_json() + "\n" for path in shipped)
