"""Many photos at once: uploads and zip archives -> one row per file, batched Grad-CAM, a CSV.

The flow: :func:`collect` turns uploaded paths (photos and ``.zip`` archives) into named sources, each with its
bytes or a reason it is skipped (at most ``archive.MAX_FILES`` images and ``archive.MAX_TOTAL_BYTES`` bytes in
all); :func:`run_batch` decodes every source through ``image_io.load_image``, analyses the readable ones in
batches (:func:`analyze_batch`: one forward and one backward per batch, Grad-CAM at the last stage), and returns
one :class:`Row` per source, the unreadable ones with their reason; :func:`write_csv` writes the rows.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from torch import nn

from . import archive, texts
from .calibration import calibrated_probabilities
from .card import ModelCard
from .explain import Analysis, _preprocess, _to_model, cam_layers
from .familiarity import familiarity_recorder
from .family import as_family
from .hooks import ExcitationRecorder, LayerRecorder, model_lock, preserved_state
from .image_io import ImageRejected, load_image

DEFAULT_BATCH_SIZE = 8  # see scripts/bench_batch.py and the README for the measured images/s
CSV_COLUMNS = ("file", "status", "top_class", "probability", "positive_class", "positive_vs_rest", "unfamiliar",
               "reason")
Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class Source:
    """One input file: a photo upload or an archive member, with its bytes (or path) or why it is skipped."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Row:
    """One line of the batch result: a file's prediction, or the reason it has none."""

    file: str
    analysis: Analysis | None
    photo: Image.Image | None  # the decoded photo (for overlays), None when unreadable
    reason: str | None = None
    positive: str | None = None  # the class of the "X vs rest" column (e.g. Monkeypox), when the model has it

    @property
    def ok(self) -> bool:
        return self.analysis is not None

    @property
    def top_class(self) -> str | None:
        return None if self.analysis is None else self.analysis.predicted

    @property
    def probability(self) -> float | None:
        return None if self.analysis is None else self.analysis.probabilities[self.analysis.predicted]

    @property
    def positive_vs_rest(self) -> float | None:
        if self.analysis is None or self.positive is None:
            return None
        return self.analysis.probabilities.get(self.positive)

    @property
    def unfamiliar(self) -> bool | None:
        """The analysis' out-of-distribution flag, where the library computes one; None otherwise."""
        value = getattr(self.analysis, "unfamiliar", None)
        return None if value is None else bool(value)


def _display_name(name: str) -> str:
    """Only the last part of an uploaded file's path (no server temp folders in results)."""
    return PurePosixPath(str(name).replace("\\", "/")).name or "file"


def collect(paths: Sequence[str | Path], *, max_files: int = archive.MAX_FILES,
            max_total_bytes: int = archive.MAX_TOTAL_BYTES) -> list[Source]:
    """Uploaded files -> sources, archives opened (see ``senet.archive``), limits applied across all of them.

    Archive members are named ``archive.zip/inner/path.jpg``. Sources beyond ``max_files`` readable files or
    ``max_total_bytes`` in all are kept with a reason, so every input gets its row.
    """
    sources: list[Source] = []
    taken = 0
    used = 0
    for raw in paths:
        path = Path(raw)
        shown = _display_name(str(raw))
        if archive.is_zip(path):
            try:
                members = archive.read_zip(path, max_files=max(0, max_files - taken),
                                           max_total_bytes=max(0, max_total_bytes - used))
            except archive.ArchiveRejected as error:
                sources.append(Source(shown, reason=str(error)))
                continue
            for member in members:
                name = f"{shown}/{member.name}"
                if member.data is None:
                    sources.append(Source(name, reason=member.reason))
                else:
                    taken += 1
                    used += len(member.data)
                    sources.append(Source(name, data=member.data))
            continue
        try:
            size = path.stat().st_size
        except OSError:
            sources.append(Source(shown, reason="The uploaded file could not be found."))
            continue
        if taken >= max_files:
            sources.append(Source(shown, reason=f"Skipped: only the first {max_files} files are read."))
        elif used + size > max_total_bytes:
            sources.append(Source(shown, reason=f"Skipped: the total size limit ({max_total_bytes // 2**20} MB) "
                                                "was reached."))
        else:
            taken += 1
            used += size
            sources.append(Source(shown, path=path))
    return sources


def _decode(source: Source) -> Image.Image | str:
    if source.reason is not None:
        return source.reason
    try:
        return load_image(source.data if source.data is not None else source.path)
    except ImageRejected as error:
        return str(error)


def analyze_batch(model: nn.Module, card: ModelCard, images: Sequence[Image.Image]) -> list[Analysis]:
    """Grad-CAM at the model's default layer, class probabilities and SE excitations for several images in
    one forward and one backward pass.

    Gives what ``senet.analyze(model, card, image)`` gives for each image (same map, up to float rounding: the
    samples of a batch are independent in eval mode), faster per image on a CPU for a few images at a time.
    The model is left as found; the pass holds the model's lock.
    """
    if not images:
        return []
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import scale_cam_image

    start = time.perf_counter()
    layer = next(iter(cam_layers(model)))
    with torch.inference_mode(False):
        prepared = [_preprocess(card, image) for image in images]
        batch = torch.cat([tensor for tensor, _ in prepared])  # (B, 3, H, W)
        prep_done = time.perf_counter()
        with model_lock(model), preserved_state(model):
            locked = time.perf_counter()
            parameter = next(model.parameters())
            batch = _to_model(batch, model, parameter)
            module = as_family(model).cam_layer(layer)
            with ExcitationRecorder(model) as gates, LayerRecorder(module, leaf=True) as caught, \
                    familiarity_recorder(model) as seen:
                with torch.no_grad():  # the layer's hook switches grad on for the head only
                    logits = model(batch)
                if caught.output is None:
                    raise RuntimeError("the CAM layer did not run in the forward pass")
                if logits.shape != (len(images), card.num_classes):
                    raise ValueError(f"the model gives {tuple(logits.shape)} logits for {card.num_classes} labels")
                probabilities = calibrated_probabilities(logits, card).cpu()  # the scale analyze() gives
                predicted = probabilities.argmax(dim=1)
                # Samples are independent, so the gradient of the sum is each sample's own gradient.
                score = logits.gather(1, predicted.to(logits.device)[:, None]).sum()
                grads = torch.autograd.grad(score, caught.output)[0]
                excitations = [gate.float().cpu().numpy() for gate in gates.ordered()]  # each (B, C)
                names = [info.name for info in gates.blocks]
                paths = {info.name: info.path for info in gates.blocks}
            fb_done = time.perf_counter()
            act = caught.output.detach().float().cpu().numpy()
            grad = grads.float().cpu().numpy()
            cam_object = GradCAM(model, target_layers=[])  # its eval() call is undone by preserved_state
            raw = cam_object.get_cam_image(batch, module, None, act, grad, False)  # (B, h, w)
    height, width = batch.shape[-2:]
    cams = np.clip(np.nan_to_num(scale_cam_image(np.maximum(raw, 0), (width, height))), 0, 1).astype(np.float32)
    done = time.perf_counter()
    labels = list(card.labels)
    share = 1e3 / len(images)  # per-image share of the batch's time
    timings = {"preprocess": (prep_done - start) * share, "forward_backward": (fb_done - locked) * share,
               "cam": (done - fb_done) * share, "total": (done - start) * share}
    familiar = seen.results()
    results = []
    for i, (_, rgb) in enumerate(prepared):
        index = int(predicted[i])
        results.append(Analysis(
            probabilities={label: float(p) for label, p in zip(labels, probabilities[i].tolist())},
            predicted=labels[index], target=labels[index], target_index=index, method="gradcam", layer=layer,
            cam=cams[i], excitations={name: values[i] for name, values in zip(names, excitations)},
            block_paths=paths, input_rgb=rgb, timings=dict(timings), device=str(parameter.device),
            familiarity=None if familiar is None else familiar[i][0],
            unfamiliar=None if familiar is None else familiar[i][1]))
    return results


def positive_class(card: ModelCard) -> str | None:
    """The class of the "X vs rest" column: the card's positive class, when the model has more than two classes."""
    return texts.positive_class(card) if card.num_classes > 2 else None


def run_batch(
    model: nn.Module,
    card: ModelCard,
    sources: Sequence[Source],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    analyze_one: Callable[[Image.Image], Analysis] | None = None,
) -> list[Row]:
    """One row per source, in order; unreadable sources get their reason and the batch goes on.

    Args:
        batch_size: images per forward pass (1 analyses one at a time).
        progress: called with (files done, files in all) after each batch.
        analyze_one: analyse images one by one with this instead of batching (e.g. a caller whose
            ``senet.analyze`` wrapper adds more to each analysis).
    """
    positive = positive_class(card)
    total = len(sources)
    rows: list[Row | None] = [None] * total
    pending: list[tuple[int, str, Image.Image]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if not pending:
            return
        images = [image for _, _, image in pending]
        analyses = [analyze_one(image) for image in images] if analyze_one else analyze_batch(model, card, images)
        for (index, name, image), analysis in zip(pending, analyses):
            rows[index] = Row(name, analysis, image, positive=positive)
        done += len(pending)
        pending.clear()
        if progress is not None:
            progress(done, total)

    for index, source in enumerate(sources):
        decoded = _decode(source)
        if isinstance(decoded, str):
            rows[index] = Row(source.name, None, None, reason=decoded, positive=positive)
            done += 1
            continue
        pending.append((index, source.name, decoded))
        if len(pending) >= max(1, batch_size):
            flush()
    flush()
    if progress is not None:
        progress(total, total)
    return [row for row in rows if row is not None]


def csv_record(row: Row) -> dict[str, str]:
    """One CSV line (see ``CSV_COLUMNS``); probabilities with 4 decimals, empty cells where there is nothing."""
    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    unfamiliar = row.unfamiliar
    return {
        "file": row.file,
        "status": "ok" if row.ok else "skipped",
        "top_class": row.top_class or "",
        "probability": number(row.probability),
        "positive_class": row.positive or "",
        "positive_vs_rest": number(row.positive_vs_rest),
        "unfamiliar": "" if unfamiliar is None else ("yes" if unfamiliar else "no"),
        "reason": row.reason or "",
    }


def write_csv(rows: Sequence[Row], path: str | Path) -> Path:
    """Write the rows as UTF-8 CSV with a header (``CSV_COLUMNS``); returns the path."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            record = csv_record(row)
            # A spreadsheet runs cells starting with = + - @ as formulas: file names come from uploads.
            if record["file"][:1] and record["file"][0] in "=+-@\t\r":
                record["file"] = "'" + record["file"]
            writer.writerow(record)
    return path


__all__ = ["CSV_COLUMNS", "DEFAULT_BATCH_SIZE", "Row", "Source", "analyze_batch", "collect", "csv_record",
           "positive_class", "run_batch", "write_csv"]
