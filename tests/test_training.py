"""Training, evaluation and pretraining CLIs end to end on a tiny generated dataset (CPU, seconds)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_helpers import CLASSES, make_dataset
from PIL import Image

from senet import load_checkpoint, read_card
from senet.augment import AugmentConfig, augment_batch
from senet.crossval import CV_KEYS, cv_keys, merge_folds
from senet.crossval import main as crossval_main
from senet.data import OTHERS, binarize, binarized_positive, load_splits, read_folds
from senet.devices import DeviceError, device_name, resolve_device
from senet.evaluate import evaluate
from senet.familiarity import statistics_for
from senet.metrics import classification_metrics, evaluation_metrics, one_vs_rest_metrics, roc_auc, vs_rest_key
from senet.pretrain import main as pretrain_main
from senet.provenance import describe_dataset
from senet.registry import create_model
from senet.train import main as train_main
from senet.trainer import TrainConfig, fit

FAST = ["--img-size", "32", "--batch-size", "6", "--epochs", "2", "--warmup-epochs", "1", "--workers", "2",
        "--device", "cpu", "--seed", "0"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("msld_tiny"))


@pytest.fixture(scope="module")
def trained(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "model"
    outliers = tmp_path_factory.mktemp("outliers")  # photos that are not skin photos: outlier exposure
    for i, colour in enumerate(("white", "black", "blue", "yellow")):
        Image.new("RGB", (40, 40), colour).save(outliers / f"{i}.png")
    assert train_main(["--data", str(dataset), "--arch", "se_resnet18", "--fold", "1", "--positive-class", "Monkeypox",
                       "--out", str(out), "--outliers", str(outliers), *FAST]) == 0
    return out


def test_train_writes_a_loadable_self_describing_checkpoint(trained: Path) -> None:
    model, card = load_checkpoint(trained.with_suffix(".safetensors"))
    assert list(card.labels) == sorted(CLASSES)
    test = card.metrics["test"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc_macro", "per_class", "confusion_matrix"):
        assert key in test
    assert sum(map(sum, test["confusion_matrix"])) == test["n"] == 6  # two Test images per class in fold 1
    assert test["monkeypox_vs_rest"]["positive"] == card.data["positive"] == "Monkeypox"
    assert card.training["command"].startswith("python -m senet.train")
    assert card.training["recipe"]["epochs"] == 2
    assert card.data["split"] == "folds.csv fold1 (official)"
    assert card.num_params == sum(p.numel() for p in model.parameters())
    profiles = card.class_profiles
    assert profiles["blocks"][0] == "SE_2_1" and len(profiles["blocks"]) == 8
    assert set(profiles["classes"]) == set(CLASSES)
    assert trained.with_suffix(".md").read_text().startswith("# ")
    # senet.trust ran after training: familiarity statistics in the weights file, calibration in the card
    assert card.metrics["calibration"]["temperature"] > 0 and card.metrics["familiarity"]["fitted_on"]
    assert statistics_for(model) is not None and statistics_for(model).outlier is not None  # --outliers given
    assert card.metrics["familiarity"]["outliers"]["photos"] == 4
    assert trained.with_name(trained.name + "_confusion.png").stat().st_size > 1000


def test_evaluate_agrees_with_the_card(trained: Path, dataset: Path) -> None:
    card = read_card(trained.with_suffix(".json"))
    metrics = evaluate(trained.with_suffix(".safetensors"), dataset, fold=1, device="cpu")
    assert metrics["accuracy"] == pytest.approx(card.metrics["test"]["accuracy"])
    assert metrics["confusion_matrix"] == card.metrics["test"]["confusion_matrix"]
    assert metrics["monkeypox_vs_rest"] == card.metrics["test"]["monkeypox_vs_rest"]  # the card's positive class


@pytest.mark.slow
def test_training_is_deterministic_with_a_seed(trained: Path, dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    train_main(["--data", str(dataset), "--arch", "se_resnet18", "--fold", "1", "--positive-class", "Monkeypox",
                "--out", str(again), *FAST])
    first, _ = load_checkpoint(trained.with_suffix(".safetensors"))
    second, _ = load_checkpoint(again.with_suffix(".safetensors"))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


def test_folds_csv_splits_and_positive(dataset: Path) -> None:
    fold2 = read_folds(dataset, 2)
    fold1 = load_splits(dataset, fold=1)
    assert {s.path for s in fold1.test}.isdisjoint({s.path for s in fold1.train})
    assert {s.path for s in fold2.test} != {s.path for s in fold1.test}
    assert len(fold1.train) + len(fold1.valid) + len(fold1.test) == 24
    binary = binarize(fold1, "Monkeypox")
    assert binary.labels == [OTHERS, "Monkeypox"]
    assert {s.label for s in binary.train} == {OTHERS, "Monkeypox"}
    with pytest.raises(ValueError, match="not a class"):
        binarize(fold1, "Smallpox")
    with pytest.raises(ValueError, match="fold9"):
        read_folds(dataset, 9)


@pytest.mark.slow
def test_positive_training_and_cross_validation(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "binary"
    train_main(["--data", str(dataset), "--arch", "resnet18", "--cv", "--positive", "Monkeypox", "--out", str(out),
                *FAST])
    card = read_card(out.with_suffix(".json"))
    assert list(card.labels) == [OTHERS, "Monkeypox"]
    assert card.data["positive"] == "Monkeypox"
    cv = card.metrics["cv"]
    assert cv["folds"] == 2 and len(cv["accuracy"]["values"]) == 2
    assert cv["accuracy"]["mean"] == pytest.approx(np.mean(cv["accuracy"]["values"]))
    assert out.with_name("binary_fold2.json").is_file()
    assert card.class_profiles == {}  # a plain ResNet has no SE blocks
    evaluated = evaluate(out.with_suffix(".safetensors"), dataset, fold=1, device="cpu")  # binarised from the card
    assert evaluated["labels"] == [OTHERS, "Monkeypox"]


@pytest.mark.slow
def test_folds_trained_in_separate_runs_merge_into_the_same_cross_validation(dataset: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    train_main(["--data", str(dataset), "--arch", "resnet18", "--cv", "--out", str(whole), *FAST])
    split = tmp_path / "split"
    for fold in ("2", "1"):  # two sittings, in either order
        train_main(["--data", str(dataset), "--arch", "resnet18", "--folds", fold, "--out", str(split), *FAST])
    assert not split.with_suffix(".json").exists()  # nothing is merged until asked
    assert crossval_main(["--out", str(split)]) == 0
    merged, reference = read_card(split.with_suffix(".json")), read_card(whole.with_suffix(".json"))
    for key in ("accuracy", "macro_f1", "balanced_accuracy"):
        assert merged.metrics["cv"][key] == reference.metrics["cv"][key]
    assert merged.metrics["cv"]["fold_ids"] == [1, 2] and "incomplete" not in merged.metrics["cv"]
    commands = merged.metrics["cv"]["commands"]  # each fold's own command line, as main(argv) was called
    assert [("--folds 1" in c, "--folds 2" in c) for c in commands] == [(True, False), (False, True)]
    assert merged.metrics["fold"] == "fold1"  # the shipped weights are fold 1's, byte for byte
    assert split.with_suffix(".safetensors").read_bytes() == split.with_name("split_fold1.safetensors").read_bytes()
    assert "Folds: 1, 2." in split.with_suffix(".md").read_text()


@pytest.mark.slow
def test_a_partial_cross_validation_says_so_and_mixed_recipes_are_refused(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "partial"
    train_main(["--data", str(dataset), "--arch", "resnet18", "--folds", "2", "--out", str(out), *FAST])
    with pytest.raises(ValueError, match="fold 1 was not trained"):
        merge_folds(out, ship_fold=1)
    merge_folds(out)
    cv = read_card(out.with_suffix(".json")).metrics["cv"]
    assert cv["folds"] == 1 and cv["incomplete"] == "only folds 2 of the 2 official folds were trained"
    assert "**Incomplete:**" in out.with_suffix(".md").read_text()
    train_main(["--data", str(dataset), "--arch", "resnet18", "--folds", "1", "--out", str(out), *FAST,
                "--lr", "0.01"])
    with pytest.raises(ValueError, match="trained differently.*recipe"):
        merge_folds(out)
    with pytest.raises(SystemExit, match="folds.csv has folds"):
        train_main(["--data", str(dataset), "--folds", "3", "--out", str(out), *FAST])


@pytest.mark.slow
def test_plain_image_folder_gets_a_seeded_split(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "folder")
    (root / "folds.csv").unlink()
    out = tmp_path / "plain"
    train_main(["--data", str(root), "--arch", "se_resnet18", "--out", str(out), *FAST])
    assert read_card(out.with_suffix(".json")).data["split"].startswith("random stratified split")


@pytest.mark.slow
def test_pretrain_then_init_records_the_backbone(dataset: Path, tmp_path: Path) -> None:
    backbone = tmp_path / "backbone"
    pretrain_main(["--data", str(dataset), "--arch", "se_resnet18", "--out", str(backbone), "--img-size", "32",
                   "--batch-size", "8", "--epochs", "2", "--warmup-epochs", "1", "--workers", "2", "--device", "cpu"])
    pre_card = read_card(backbone.with_suffix(".json"))
    assert pre_card.labels[0].startswith(dataset.name + "/")
    assert "heldout_accuracy" in pre_card.metrics
    out = tmp_path / "finetuned"
    train_main(["--data", str(dataset), "--arch", "se_resnet18", "--init", str(backbone.with_suffix(".safetensors")),
                "--out", str(out), *FAST])
    card = read_card(out.with_suffix(".json"))
    assert card.backbone["checkpoint"] == "backbone.safetensors"
    assert card.backbone["training"]["command"].startswith("python -m senet.pretrain")
    assert "license" in card.backbone and "pretrained backbone" in card.description


@pytest.mark.slow
def test_a_stopped_pretraining_resumes_where_it_stopped(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "long"
    args = ["--data", str(dataset), "--arch", "resnet18", "--out", str(out), "--img-size", "32", "--batch-size", "8",
            "--epochs", "3", "--warmup-epochs", "1", "--workers", "2", "--device", "cpu"]
    pretrain_main([*args, "--stop-after", "0.001"])  # stops after its first epoch
    stopped = read_card(out.with_suffix(".json")).training
    assert (stopped["epochs_trained"], stopped["finished"], stopped["recipe"]["epochs"]) == (1, False, 3)
    assert stopped["speed"]["train_images_per_s"] > 0  # measured on its one epoch
    first_weights = load_checkpoint(out.with_suffix(".safetensors"))[0].state_dict()
    pretrain_main([*args, "--resume", str(out.with_suffix(".safetensors"))])
    resumed = read_card(out.with_suffix(".json")).training
    assert (resumed["epochs_trained"], resumed["finished"]) == (3, True)
    assert resumed["recipe"] == stopped["recipe"]  # one recipe, run in two sittings
    assert resumed["earlier_commands"] == [stopped["command"]] and "--stop-after" in stopped["command"]
    assert resumed["seconds"] > stopped["seconds"]
    weights = load_checkpoint(out.with_suffix(".safetensors"))[0].state_dict()
    assert not torch.equal(weights["fc.weight"], first_weights["fc.weight"])
    with pytest.raises(SystemExit, match="not a run stopped"):
        pretrain_main([*args, "--resume", str(out.with_suffix(".safetensors"))])


def test_a_resumed_schedule_numbers_its_epochs_from_the_start_epoch() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (8, 3, 36, 36), dtype=torch.uint8, generator=generator)
    labels = torch.arange(8) % 2
    config = TrainConfig(epochs=4, img_size=32, batch_size=4, warmup_epochs=1, ema_decay=0.0, start_epoch=2)
    result = fit(create_model("resnet18", num_classes=2), images, labels, 2, config, mean=(0.5,) * 3,
                 std=(0.25,) * 3, device=torch.device("cpu"))
    assert [row["epoch"] for row in result.history] == [3, 4] and result.epochs == 4 and result.finished
    with pytest.raises(ValueError, match="time budget"):
        fit(create_model("resnet18", num_classes=2), images, labels, 2, replace(config, time_budget=5.0),
            mean=(0.5,) * 3, std=(0.25,) * 3, device=torch.device("cpu"))


def test_init_refuses_a_backbone_of_another_architecture(dataset: Path, trained: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        train_main(["--data", str(dataset), "--arch", "se_resnet34", "--init", str(trained.with_suffix(".safetensors")),
                    "--out", str(tmp_path / "x"), *FAST])


def test_augmentation_is_seeded_and_well_formed() -> None:
    images = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    runs = []
    for _ in range(2):
        generator = torch.Generator().manual_seed(3)
        runs.append(augment_batch(images, labels, 3, (32, 32), AugmentConfig(mix_prob=1.0), (0.5,) * 3, (0.25,) * 3,
                                  generator, label_smoothing=0.1))
    (x1, t1), (x2, t2) = runs
    assert x1.shape == (6, 3, 32, 32) and torch.equal(x1, x2) and torch.equal(t1, t2)
    assert torch.allclose(t1.sum(1), torch.ones(6)) and torch.isfinite(x1).all()


def test_metrics_on_known_values() -> None:
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    targets = np.array([0, 1, 2, 1])
    m = classification_metrics(probs, targets, ["a", "b", "c"])
    assert m["accuracy"] == 0.75
    assert m["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert m["per_class"]["a"]["precision"] == 0.5 and m["per_class"]["b"]["recall"] == 0.5
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    binary = one_vs_rest_metrics(probs, targets, ["a", "b", "c"], "b")
    assert binary["sensitivity"] == 0.5 and binary["specificity"] == 1.0


def test_the_positive_class_comes_from_the_card_not_the_code() -> None:
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    targets = np.array([0, 1, 2, 1])
    assert "b_vs_rest" not in evaluation_metrics(probs, targets, ["a", "b", "c"])  # no positive class: none
    assert evaluation_metrics(probs, targets, ["a", "b", "c"], positive="b")["b_vs_rest"]["sensitivity"] == 0.5
    assert vs_rest_key("Monkeypox") == "monkeypox_vs_rest"
    assert vs_rest_key("Hand, foot & mouth") == "hand_foot_mouth_vs_rest"
    assert cv_keys("Measles")[-1] == "measles_vs_rest.roc_auc" and cv_keys(None) == CV_KEYS
    assert describe_dataset(Path("msld_v2"))["positive"] == "Monkeypox"
    assert binarized_positive([OTHERS, "Monkeypox"], "Monkeypox") == "Monkeypox"
    assert binarized_positive(sorted(CLASSES), "Monkeypox") is None  # a 6-class MSLD card is not binarised


@pytest.mark.slow
def test_any_class_can_be_the_positive_one(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "measles"  # any class of any dataset: its one-vs-rest metrics, over the folds too
    train_main(["--data", str(dataset), "--arch", "resnet18", "--cv", "--positive-class", "Measles", "--out", str(out),
                *FAST])
    card = read_card(out.with_suffix(".json"))
    assert card.data["positive"] == "Measles" and "monkeypox_vs_rest" not in card.metrics["test"]
    assert len(card.metrics["cv"]["measles_vs_rest.sensitivity"]["values"]) == 2
    with pytest.raises(SystemExit, match="not a class"):
        train_main(["--data", str(dataset), "--positive-class", "Smallpox", "--out", str(out), *FAST])


def test_shipped_cards_name_their_positive_class_and_keep_their_numbers() -> None:
    for path in sorted((Path(__file__).resolve().parents[1] / "checkpoints").glob("*.json")):
        card = read_card(path)
        assert card.data["positive"] == "Monkeypox"
        assert vs_rest_key(card.data["positive"]) in card.metrics["test"]
        summarised = set(card.metrics["cv"]) - {"folds", "fold_ids", "commands", "incomplete"}
        assert summarised <= set(cv_keys(card.data["positive"]))  # a merge today would find every one of them


def test_devices_resolve_in_one_place() -> None:
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("auto").type in ("cpu", "cuda")
    assert device_name(torch.device("cpu")).startswith("CPU (")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match=r"CUDA was asked for .* no CUDA GPU; use --device cpu\."):
            resolve_device("cuda")
        with pytest.raises(SystemExit, match="no CUDA GPU"):
            train_main(["--data", "examples", "--out", "x", "--device", "cuda"])
    assert issubclass(DeviceError, ValueError)


def test_card_json_is_plain_json(trained: Path) -> None:
    data = json.loads(trained.with_suffix(".json").read_text())
    assert data["arch"] == "se_resnet18" and data["schema_version"] == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_with_amp(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "cuda"
    args = [a if a != "cpu" else "cuda" for a in FAST]
    train_main(["--data", str(dataset), "--arch", "se_resnet18", "--out", str(out), "--measure-throughput", *args])
    card = read_card(out.with_suffix(".json"))
    assert card.training["device"].endswith("(CUDA)") and card.training["speed"]["bare_fwd_bwd_images_per_s"] > 0
    model, _ = load_checkpoint(out.with_suffix(".safetensors"))  # trained on the GPU, loads on the CPU
    assert all(p.device.type == "cpu" for p in model.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_with_cuda_graphs(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "graphs"
    args = [a if a != "cpu" else "cuda" for a in FAST]
    train_main(["--data", str(dataset), "--arch", "se_resnet18", "--compile", "--compile-mode", "reduce-overhead",
                "--out", str(out), *args])
    card = read_card(out.with_suffix(".json"))
    assert card.training["recipe"]["compile_mode"] == "reduce-overhead"
    load_checkpoint(out.with_suffix(".safetensors"))
