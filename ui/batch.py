"""The Batch tab: many photos or one zip archive, one model, a sortable table, overlays and a CSV (``/batch``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

import senet
from senet import archive
from senet import batch as batching
from senet.catalog import Catalog
from ui.components import PROGRESS, fail, gpu
from ui.i18n import I18N, add
from ui.refusals import refuse

MAX_GALLERY = 60  # overlays shown on the page; the table and the CSV hold every file
GALLERY_SIDE = 320

add({
    "en": {
        "tab_batch": "Batch",
        "batch_help": (f"Upload several photos or one .zip archive: at most {archive.MAX_FILES} images and "
                       f"{archive.MAX_TOTAL_BYTES // 2**20} MB in all, each file at most 20 MB (the upload limit). "
                       "Files that cannot be read get a row with the reason; nested archives, links and paths "
                       "outside the archive are skipped."),
        "batch_files": "Photos or a .zip archive",
        "batch_run": "Analyse all",
        "batch_table": "Results (click a column to sort)",
        "batch_gallery": "Heatmaps on the photos",
        "batch_csv": "Download the table (CSV)",
    },
    "zh": {
        "tab_batch": "批量分析",
        "batch_help": (f"上传多张照片或一个 .zip 压缩包：总共最多 {archive.MAX_FILES} 张图片、"
                       f"{archive.MAX_TOTAL_BYTES // 2**20} MB，每个文件最多 20 MB（上传限制）。"
                       "无法读取的文件也会列出原因；嵌套的压缩包、链接和指向压缩包外的路径会被跳过。"),
        "batch_files": "照片或 .zip 压缩包",
        "batch_run": "全部分析",
        "batch_table": "结果（点击列标题排序）",
        "batch_gallery": "照片上的热力图",
        "batch_csv": "下载表格（CSV）",
    },
})

HEADERS = ["file", "top class", "probability", "positive vs rest", "reason", "unfamiliar"]
WIDTHS: list[str | int] = ["28%", "11%", "10%", "12%", "31%", "8%"]


def _table(rows: list[batching.Row]) -> dict[str, Any]:
    """The page's table: one row per file; the "X vs rest" header names the class (e.g. Monkeypox)."""
    positive = next((row.positive for row in rows if row.positive), None)
    headers = HEADERS[:3] + [f"{positive} vs rest" if positive else HEADERS[3]] + HEADERS[4:]
    data = []
    for row in rows:
        record = batching.csv_record(row)
        data.append([record["file"], record["top_class"],
                     None if row.probability is None else round(row.probability, 4),
                     None if row.positive_vs_rest is None else round(row.positive_vs_rest, 4),
                     record["reason"], record["unfamiliar"]])
    return {"headers": headers, "data": data}


class BatchRunner:
    """The Batch tab's handler."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @gpu(duration=120)  # up to 200 photos
    def run(self, files: list[str] | None, model: str | None, progress: gr.Progress = PROGRESS) -> tuple[Any, ...]:
        """Analyse many photos with one model.

        Args:
            files: photos and/or .zip archives of photos (at most 200 images and 200 MB in all).
            model: a model name from the model picker; empty for the default model.
        Returns:
            A CSV file with one row per input file (columns: file, status, top_class, probability, positive_class,
            positive_vs_rest, unfamiliar, reason), the same as a table, and the heatmaps of the first photos.
        """
        if not files:
            raise refuse("Please upload some photos or a .zip archive first.")
        paths = [getattr(item, "path", None) or getattr(item, "name", None) or str(item) for item in files]
        try:
            net, card, entry = self.catalog.load(model or None)
            sources = batching.collect(paths)
            progress((0, len(sources)), desc="files", unit="files")

            def report(done: int, total: int) -> None:
                progress((done, total), desc="files", unit="files")

            # Each batched pass holds the model's own lock (senet.hooks.model_lock, as senet.analyze does), so
            # other visitors' analyses of this model run between the passes instead of after all 200 photos.
            rows = batching.run_batch(net, card, sources, progress=report)
        except Exception as error:
            raise fail(error) from None
        out = Path(tempfile.mkdtemp(prefix="senet_batch_")) / f"senet_batch_{entry.name}.csv"
        batching.write_csv(rows, out)
        gallery: list[tuple[Any, str]] = []
        for row in rows:
            if row.photo is not None and row.analysis is not None and len(gallery) < MAX_GALLERY:
                photo = row.photo.copy()
                photo.thumbnail((GALLERY_SIDE, GALLERY_SIDE))
                warn = "⚠️ unfamiliar photo · " if row.unfamiliar else ""  # as the table's "unfamiliar" column
                gallery.append((senet.overlay(photo, row.analysis.cam, opacity=0.5),
                                f"{warn}{row.file}: {row.top_class} {row.probability or 0:.0%}"))
        return str(out), _table(rows), gallery


def layout(catalog: Catalog) -> SimpleNamespace:
    ui = SimpleNamespace()
    gr.Markdown(I18N("batch_help"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=300):
            ui.files = gr.File(file_count="multiple", label=I18N("batch_files"), elem_id="batch-files")
            ui.model = gr.Dropdown(catalog.choices(), value=catalog.default, label=I18N("model"))
            ui.run = gr.Button(I18N("batch_run"), variant="primary", elem_id="batch-run")
            ui.csv = gr.File(label=I18N("batch_csv"), interactive=False, elem_id="batch-csv")
        with gr.Column(scale=7):
            ui.table = gr.Dataframe(headers=HEADERS, label=I18N("batch_table"), interactive=False, wrap=True,
                                    column_widths=WIDTHS, elem_id="batch-table")
            ui.gallery = gr.Gallery(label=I18N("batch_gallery"), columns=5, height="auto", object_fit="cover")
    return ui


def wire(handler: BatchRunner, ui: SimpleNamespace, heavy: dict[str, Any]) -> None:
    ui.run.click(handler.run, [ui.files, ui.model], [ui.csv, ui.table, ui.gallery], api_name="batch", **heavy)
