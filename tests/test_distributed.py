"""Training under torchrun (DDP, Gloo on the CPU): sharding, SyncBatchNorm, equality with one process, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_helpers import make_dataset
from torch import nn
from torch.utils.data import DistributedSampler

from senet import load_checkpoint, read_card
from senet.augment import AugmentConfig, augment_batch, augment_rows, draw_batch
from senet.data import eval_tensor, load_splits
from senet.distributed import SINGLE, Distributed, per_process_batch, run_command, shard_rows
from senet.pretrain import main as pretrain_main
from senet.sync_batchnorm import CpuSyncBatchNorm, convert_sync_batchnorm, revert_sync_batchnorm
from senet.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--img-size", "32", "--batch-size", "6", "--epochs", "2", "--warmup-epochs", "1", "--workers", "2",
        "--device", "cpu", "--seed", "0"]


def torchrun(*args: str, processes: int = 2) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc_per_node N -m ARGS`` (a free port of its own; this interpreter)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               "-m", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.parametrize("world", [2, 3])
def test_each_process_gets_distributed_samplers_share_of_every_global_batch(world: int) -> None:
    images, batch, seed, epoch = 23, 6, 7, 3  # 23 images: the last partial batch is dropped, as in training
    order = torch.randperm(images, generator=torch.Generator().manual_seed(seed + epoch))
    for rank in range(world):
        sampler = DistributedSampler(range(images), num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                     drop_last=True)
        sampler.set_epoch(epoch)  # DistributedSampler's permutation: randperm seeded with seed + epoch
        theirs = list(sampler)
        local = batch // world
        ctx = Distributed(rank=rank, world_size=world)
        for step in range(images // batch):
            ours = order[step * batch:(step + 1) * batch][shard_rows(batch, ctx, torch.device("cpu"))]
            assert ours.tolist() == theirs[step * local:(step + 1) * local]


def test_the_global_batch_must_split_evenly() -> None:
    assert per_process_batch(32, 4) == 8
    with pytest.raises(ValueError, match="--batch-size 6 is the global batch .* among the 4 processes"):
        per_process_batch(6, 4)


def test_a_batch_size_that_does_not_split_is_refused_before_waiting_for_peers(monkeypatch: pytest.MonkeyPatch,
                                                                             tmp_path: Path) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")  # as under torchrun; no process group is ever created
    data = make_dataset(tmp_path / "data")
    with pytest.raises(SystemExit, match="must split evenly among the 4 processes"):
        train_main(["--data", str(data), "--out", str(tmp_path / "x"), *TINY])


def test_processes_augment_their_rows_exactly_as_one_process_augments_the_batch() -> None:
    images = torch.randint(0, 256, (8, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(8) % 3
    cfg = AugmentConfig(mix_prob=1.0)  # mixed: rows need partners that another process owns
    for seed in range(4):
        whole = augment_batch(images, labels, 3, (32, 32), cfg, (0.5,) * 3, (0.25,) * 3,
                              torch.Generator().manual_seed(seed), label_smoothing=0.1)
        draw = draw_batch(8, (32, 32), cfg, torch.Generator().manual_seed(seed), torch.device("cpu"))
        for rank in range(2):
            rows = shard_rows(8, Distributed(rank=rank, world_size=2), torch.device("cpu"))
            x, t = augment_rows(images, labels, rows, 3, (32, 32), draw, (0.5,) * 3, (0.25,) * 3, label_smoothing=0.1)
            assert torch.equal(x, whole[0][rows]) and torch.equal(t, whole[1][rows])


def test_sync_batchnorm_converts_and_reverts_without_changing_the_state() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4)))
    model[1].running_mean.fill_(0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    synced = convert_sync_batchnorm(model, torch.device("cpu"))
    assert isinstance(synced[1], CpuSyncBatchNorm) and isinstance(synced[2][0], CpuSyncBatchNorm)
    plain = revert_sync_batchnorm(synced)
    assert type(plain[1]) is nn.BatchNorm2d and type(plain[2][0]) is nn.BatchNorm2d
    assert plain.state_dict().keys() == before.keys()
    assert all(torch.equal(plain.state_dict()[k], v) for k, v in before.items())


def _sync_bn_worker(rank: int, init: str, x: torch.Tensor, upstream: torch.Tensor, results: dict) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        layer = CpuSyncBatchNorm(4).train()
        part = x[rank::2].clone().requires_grad_(True)  # the rows shard_rows gives this rank
        (layer(part) * upstream[rank::2]).sum().backward()
        results[rank] = (layer(part.detach()).detach(), part.grad, layer.weight.grad, layer.running_var.clone())
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_cpu_sync_batchnorm_equals_batchnorm_over_the_global_batch(tmp_path: Path) -> None:
    """Two Gloo processes with 3 rows each: outputs, input gradients and running statistics of BatchNorm over 6."""
    import torch.multiprocessing as mp

    x = torch.randn(6, 4, 5, 5, generator=torch.Generator().manual_seed(1)) * 3 + 1
    upstream = torch.randn(6, 4, 5, 5, generator=torch.Generator().manual_seed(2))
    results = mp.Manager().dict()
    mp.spawn(_sync_bn_worker, args=(f"file://{tmp_path / 'rendezvous'}", x, upstream, results), nprocs=2)
    reference = nn.BatchNorm2d(4).train()
    whole = x.clone().requires_grad_(True)
    (reference(whole) * upstream).sum().backward()
    second = reference(whole.detach()).detach()  # the second forward: running statistics updated twice
    for rank in range(2):
        out, grad, weight_grad, running_var = results[rank]
        torch.testing.assert_close(out, second[rank::2], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(grad, whole.grad[rank::2], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(running_var, reference.running_var, atol=1e-5, rtol=1e-5)
    # DDP averages the two processes' parameter gradients; each holds its half's sum here, so they add up.
    torch.testing.assert_close(results[0][2] + results[1][2], reference.weight.grad, atol=1e-4, rtol=1e-5)


def test_a_single_process_records_the_python_command() -> None:
    assert run_command("senet.train", ["--data", "a b"], SINGLE) == "python -m senet.train --data 'a b'"
    assert SINGLE.is_main and not SINGLE.active


def _test_probabilities(checkpoint: Path, data: Path) -> np.ndarray:
    model, card = load_checkpoint(checkpoint)
    images = eval_tensor([s.path for s in load_splits(data, fold=1).test], card)
    with torch.no_grad():
        return model(images).softmax(1).numpy()


@pytest.mark.slow
def test_two_gloo_processes_train_like_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    """Same seed, same global batch of 6 (3 per process), --sync-bn: the run trains on what one process would.

    Both runs draw the same epoch permutation and augmentation, the two processes hold rows 0, 2, 4 and 1, 3, 5
    of every global batch, SyncBatchNorm normalises over all 6 images and DDP averages the two halves'
    gradients, which is the single process's mean over 6. What differs is only the order of floating-point sums
    (per-process partial sums, an all-reduce, float64 BatchNorm statistics). Adam divides each gradient by its
    running RMS, so a rounding difference in a near-zero gradient can move that weight by up to lr (1e-3) per
    step. Measured on this data: weights differ by up to 1.2e-4 and Test probabilities by 2.4e-6 after 4 steps,
    the metrics not at all. Hence: identical predictions, confusion matrix and accuracy; every probability and
    every other Test metric within 1e-3. Without --sync-bn BatchNorm sees 3 images per process: a different
    model (a legitimate difference, not tested for equality).
    """
    data = make_dataset(tmp_path / "data")
    common = ["--data", str(data), "--arch", "se_resnet18", "--fold", "1", "--positive-class", "Monkeypox", *TINY]
    one = tmp_path / "one" / "model"
    train_main([*common, "--out", str(one)])
    two = tmp_path / "two" / "model"
    done = torchrun("senet.train", *common, "--sync-bn", "--out", str(two))
    assert done.stdout.count("wrote ") == 1 and done.stdout.count("epoch 2/2") == 1  # rank 0 alone speaks
    assert sorted(p.name for p in two.parent.iterdir()) == ["model.json", "model.md", "model.safetensors",
                                                           "model_confusion.png"]
    card, reference = read_card(two.with_suffix(".json")), read_card(one.with_suffix(".json"))
    assert card.training["distributed"] == {"world_size": 2, "backend": "gloo", "sync_bn": True, "nodes": 1}
    assert card.training["command"].startswith("torchrun --standalone --nproc_per_node 2 -m senet.train --data")
    assert card.training["recipe"] == reference.training["recipe"]  # batch_size 6: the global batch
    test, expected = card.metrics["test"], reference.metrics["test"]
    assert test["confusion_matrix"] == expected["confusion_matrix"] and test["accuracy"] == expected["accuracy"]
    for key in ("balanced_accuracy", "macro_f1", "roc_auc_macro"):
        assert test[key] == pytest.approx(expected[key], abs=1e-3)
    for key, value in expected["monkeypox_vs_rest"].items():
        assert test["monkeypox_vs_rest"][key] == pytest.approx(value, abs=1e-3), key
    assert card.metrics["best_epoch"] == reference.metrics["best_epoch"]
    probs_two = _test_probabilities(two.with_suffix(".safetensors"), data)
    probs_one = _test_probabilities(one.with_suffix(".safetensors"), data)
    np.testing.assert_allclose(probs_two, probs_one, atol=1e-3)
    assert (probs_two.argmax(1) == probs_one.argmax(1)).all()


@pytest.mark.slow
def test_cross_validation_under_torchrun_writes_each_fold_once_and_merges_them(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "cv" / "model"
    done = torchrun("senet.train", "--data", str(data), "--arch", "resnet18", "--cv", "--out", str(out), *TINY)
    assert done.stdout.count("wrote ") == 3  # two folds and the merged card, by rank 0 alone
    card = read_card(out.with_suffix(".json"))
    assert card.metrics["cv"]["folds"] == 2 and card.metrics["cv"]["fold_ids"] == [1, 2]
    assert card.training["distributed"]["world_size"] == 2 and not card.training["distributed"]["sync_bn"]
    assert sorted(p.name for p in out.parent.glob("*.safetensors")) == ["model.safetensors",
                                                                      "model_fold1.safetensors",
                                                                      "model_fold2.safetensors"]


@pytest.mark.slow
def test_a_pretraining_stopped_with_two_processes_resumes_with_one(tmp_path: Path) -> None:
    """--resume across a change of N: stop after epoch 1 with 2 processes, finish with 1; the same as 1 then 1.

    The schedule, the data order and the augmentation depend on the seed and the global batch only, so the
    resumed epochs 2-3 see the batches of a run stopped and resumed with one process. Weights are not compared
    after the resume: it restarts Adam's moments, and Adam's first step is lr * sign(gradient), so a weight whose
    gradient is ~0 moves by +-lr (2e-3) on a rounding difference. The training losses of the resumed epochs
    (computed before each update, over all 16 images) are what must agree: within 1e-3 (measured: 4e-6, 3e-5).
    """
    data = make_dataset(tmp_path / "data")
    args = ["--data", str(data), "--arch", "resnet18", "--img-size", "32", "--batch-size", "8", "--epochs", "3",
            "--warmup-epochs", "1", "--workers", "2", "--device", "cpu"]
    cards = {}
    for name, first_processes in (("one", 1), ("two", 2)):
        out = tmp_path / name / "pre"
        if first_processes == 1:
            pretrain_main([*args, "--out", str(out), "--stop-after", "0.001"])
        else:
            torchrun("senet.pretrain", *args, "--sync-bn", "--out", str(out), "--stop-after", "0.001",
                     processes=first_processes)
        stopped = read_card(out.with_suffix(".json")).training
        assert (stopped["epochs_trained"], stopped["finished"]) == (1, False)
        pretrain_main([*args, "--out", str(out), "--resume", str(out.with_suffix(".safetensors"))])
        cards[name] = read_card(out.with_suffix(".json"))
    one, two = cards["one"].training, cards["two"].training
    assert two["epochs_trained"] == 3 and two["finished"]
    assert two["earlier_commands"][0].startswith("torchrun --standalone --nproc_per_node 2 -m senet.pretrain")
    assert two["recipe"] == one["recipe"]
    assert [row["epoch"] for row in two["history_tail"]] == [2, 3]
    for ours, theirs in zip(two["history_tail"], one["history_tail"]):
        assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-3)
        assert ours["acc"] == theirs["acc"]
    assert cards["two"].metrics["heldout_accuracy"] == cards["one"].metrics["heldout_accuracy"]
