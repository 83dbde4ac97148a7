"""The "Use your own model" panel: upload a state dict, type its class names, use it in this browser session only.

Uploaded models live in a :class:`senet.private_models.PrivateModels` store keyed by Gradio's session hash.
:class:`SessionCatalog` is the app's catalog with those models added for the calling session only, so the other
tabs' handlers (which call ``catalog.load`` / ``catalog.entry``) work with them unchanged, and a name from another
session is as unknown as a name that never existed. Models are dropped when the session ends (``demo.unload``),
after an hour unused, or when more than ``max_models`` are held (the oldest first). Switched off with
``--no-uploads``; off by default on a Hugging Face Space unless ``SENET_UPLOADS=1``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
from gradio.context import LocalContext
from torch import nn

from senet.card import ModelCard
from senet.catalog import Catalog, Entry
from senet.private_models import MAX_UPLOAD_BYTES, SUFFIXES, PrivateModels, UploadRefused, is_private_name
from ui.i18n import I18N, add, lang
from ui.labels import model_choices
from ui.refusals import own_model_refusal, refuse

UPLOADS_ENV = "SENET_UPLOADS"  # "1" turns uploads on (needed on a Space), "0" off
MAX_MODELS_ENV = "SENET_MAX_OWN_MODELS"
UPLOAD_LIMIT = f"{MAX_UPLOAD_BYTES // 2**20}mb"  # Gradio's max_file_size while uploads are on

add({
    "en": {
        "own_title": "Use your own model",
        "own_help": ("Upload a state dict trained with the seed posts' code (or any SE-ResNet, SE-DenseNet, "
                     "ResNet or DenseNet from this project's family): a `.pth`, `.pt` or `.safetensors` file of at "
                     "most 300 MB. The architecture is recognised from the file; nothing in it is run. The model "
                     "appears in the picker for **this browser session only** and is dropped when you close the "
                     "page."),
        "own_file": "Weights file (.pth, .pt, .safetensors; at most 300 MB)",
        "own_labels": "Class names, in training order (one per line, or separated by commas)",
        "own_title_box": "A name for it (optional)",
        "own_add": "Add my model",
        "own_refresh": "Refresh the model list",
    },
    "zh": {
        "own_title": "使用你自己的模型",
        "own_help": ("上传用种子文章代码训练的 state dict（或本项目支持的任何 SE-ResNet、SE-DenseNet、ResNet、"
                     "DenseNet）：`.pth`、`.pt` 或 `.safetensors` 文件，最大 300 MB。架构从文件中自动识别，"
                     "文件中的代码不会被执行。模型**只在本浏览器会话中**出现在模型列表里，关闭页面后即被删除。"),
        "own_file": "权重文件（.pth、.pt、.safetensors；最大 300 MB）",
        "own_labels": "类别名称，按训练时的顺序（每行一个，或用逗号分隔）",
        "own_title_box": "模型名称（可选）",
        "own_add": "添加我的模型",
        "own_refresh": "刷新模型列表",
    },
})


def uploads_enabled(flag: bool | None = None) -> bool:
    """``flag`` when given (``--no-uploads`` passes False); else ``$SENET_UPLOADS``; else on, except on a Space."""
    if flag is not None:
        return flag
    setting = os.environ.get(UPLOADS_ENV, "").strip().lower()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    return not os.environ.get("SPACE_ID")


def max_models_setting(default: int = 4) -> int:
    try:
        return max(1, int(os.environ.get(MAX_MODELS_ENV) or default))
    except ValueError:
        return default


def _session() -> str:
    """The calling browser session (empty outside a request: at build time and in scripts)."""
    request = LocalContext.request.get(None)
    return str(getattr(request, "session_hash", "") or "")


class SessionCatalog(Catalog):
    """The shared checkpoints plus the calling session's own uploaded models (and nobody else's)."""

    def __init__(self, *args: Any, private: PrivateModels | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.private = private or PrivateModels(device=self.device, max_models=max_models_setting())

    def entry(self, name: str | None) -> Entry:
        if is_private_name(name):
            assert isinstance(name, str)
            return self.private.get(_session(), name)[2]
        return super().entry(name)

    def load(self, name: str | None) -> tuple[nn.Module, ModelCard, Entry]:
        if is_private_name(name):
            assert isinstance(name, str)
            return self.private.get(_session(), name)
        return super().load(name)

    def choices(self) -> list[tuple[str, str]]:
        own = [(entry.display_name, entry.name) for entry in self.private.owned(_session())]
        return own + super().choices()


def layout() -> SimpleNamespace:
    """The panel's widgets (call inside the Explore tab's input column)."""
    panel = SimpleNamespace()
    with gr.Accordion(I18N("own_title"), open=False, elem_id="own-model"):
        gr.Markdown(I18N("own_help"))
        panel.file = gr.File(label=I18N("own_file"), file_types=list(SUFFIXES), file_count="single",
                             type="filepath", elem_id="own-file")
        panel.labels = gr.Textbox(label=I18N("own_labels"), lines=3, max_lines=12, max_length=20_000,
                                  elem_id="own-labels")
        panel.title = gr.Textbox(label=I18N("own_title_box"), max_length=120, elem_id="own-title")
        with gr.Row():
            panel.add = gr.Button(I18N("own_add"), variant="secondary", elem_id="own-add")
            panel.refresh = gr.Button(I18N("own_refresh"), size="sm", elem_id="own-refresh")
        panel.status = gr.Markdown(elem_classes="status", elem_id="own-status")
    return panel


def parse_labels(text: str | None) -> list[str]:
    """Class names typed one per line or separated by commas."""
    text = text or ""
    parts = text.splitlines() if "\n" in text.strip() else text.split(",")
    return [part.strip() for part in parts if part.strip()]


class OwnModels:
    """The panel's handlers."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def _private(self) -> PrivateModels:
        if not isinstance(self.catalog, SessionCatalog):
            raise refuse("Uploads are switched off on this server.")
        return self.catalog.private

    def add(self, file: str | None, labels: str | None, title: str | None,
            request: gr.Request) -> tuple[Any, str, None]:
        """Convert an uploaded weights file for this session and select it in the picker.

        Returns:
            The picker (with the new model chosen), a status sentence, and an emptied file input.
        """
        if not file:
            raise refuse("Choose a .pth, .pt or .safetensors file first.")
        path = Path(file)
        try:
            held = self._private().add(str(request.session_hash or ""), path, parse_labels(labels),
                                            title=title or "")
        except UploadRefused as error:
            raise own_model_refusal(str(error)) from None
        finally:
            path.unlink(missing_ok=True)  # the weights now live in memory only; free the upload cache at once
        if lang(request) == "zh":
            status = (f"已添加 **{held.entry.display_name}**：识别为 {held.recognition.describe()}。只有本浏览器会话"
                      "可以看到和使用它；关闭页面后即被删除。")
        else:
            status = (f"Added **{held.entry.display_name}**: found {held.recognition.describe()}. Only this browser "
                      "session can see and use it; it is dropped when you close the page.")
        choices = model_choices(self.catalog.choices(), lang(request))
        return gr.Dropdown(choices=choices, value=held.entry.name), status, None

    def refresh(self, request: gr.Request | None = None) -> Any:
        """Rescan ``checkpoints/`` and list the shared models plus this session's own (the choice stays), named
        in the page's language."""
        self.catalog.rescan()
        return gr.Dropdown(choices=model_choices(self.catalog.choices(), lang(request)))

    def end_session(self, request: gr.Request) -> None:
        """Drop this session's models (the tab was closed or reloaded)."""
        if isinstance(self.catalog, SessionCatalog):
            self.catalog.private.drop_owner(str(request.session_hash or ""))


def wire(demo: gr.Blocks, handlers: OwnModels, panel: SimpleNamespace | None, picker: gr.Dropdown,
         after_select: tuple[Any, Any, Any]) -> None:
    """The panel's events. ``after_select`` is ``(fn, inputs, outputs)`` run once a new model is chosen (the
    Explore tab's ``select_model``). ``panel`` is None when uploads are off: only the picker's rescan is wired."""
    picker.focus(handlers.refresh, None, picker, api_visibility="private", queue=False)
    if panel is None:
        return
    # Also an API: the model names this session may use (shared checkpoints, rescanned, and its own).
    panel.refresh.click(handlers.refresh, None, picker, api_name="refresh_models", api_visibility="undocumented",
                        queue=False)
    fn, inputs, outputs = after_select
    # Progress and a refusal's "Error" badge go on the status line only: on the picker they hid the model list.
    panel.add.click(handlers.add, [panel.file, panel.labels, panel.title], [picker, panel.status, panel.file],
                    api_name="add_own_model", concurrency_limit=1, concurrency_id="own_models",
                    show_progress_on=[panel.status]).success(
        fn, inputs, outputs, api_visibility="private")
    demo.unload(handlers.end_session)
