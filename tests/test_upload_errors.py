"""Upload refusals in Chinese on a Chinese page: the library's (translated on the server) and Gradio's own (the
page script's patterns still match the installed Gradio frontend). The browser side: tests/test_browser.py."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import gradio
import pytest
from gradio.context import LocalContext

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hostile_files import rejected_uploads  # noqa: E402

from senet.image_io import ImageRejected, load_image  # noqa: E402
from ui import upload_errors  # noqa: E402
from ui.components import fail  # noqa: E402

# What may stay Latin in a Chinese refusal: format names, units, numbers and "data URL" / "base64".
LATIN_ALLOWED = re.compile(r"JPEG|PNG|WebP|GIF|BMP|TIFF|RGB|NaN|MB|KB|GB|data URL|base64|[\d.,%×+e ]")


def _refusals(tmp_path: Path) -> list[str]:
    messages = []
    for upload in rejected_uploads():
        path = tmp_path / upload.name
        path.write_bytes(upload.data)
        with pytest.raises(ImageRejected) as caught:
            load_image(path)
        messages.append(str(caught.value))
    return messages


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_every_image_refusal_has_chinese(tmp_path: Path) -> None:
    messages = _refusals(tmp_path) + [
        "Please upload an image first.", "The file is too large (21.0 MB); the limit is 20 MB.",
        "The uploaded file could not be found. Please upload it again.",
        "The image data is not a valid data URL. Please upload the image as a file.",
        "The image data in the request is damaged (invalid base64). Please upload the image as a file.",
        "This file is not an image that can be read."]
    for message in set(messages):
        chinese = upload_errors.in_language(message, "zh")
        assert re.search(r"[\u4e00-\u9fff]", chinese), message
        left = LATIN_ALLOWED.sub("", chinese)
        assert not re.search(r"[A-Za-z]{2,}", left), (message, chinese)
        assert upload_errors.in_language(message, "en") == message
    numbers = upload_errors.in_language("The image is too small (1 × 1 pixels); each side must be at least 8 pixels.",
                                        "zh")
    assert numbers == "图片太小（1 × 1 像素）；每条边至少需要 8 像素。"


def test_fail_answers_in_the_language_of_the_request() -> None:
    error = ImageRejected("The uploaded file is empty. Please upload an image.")
    token = LocalContext.request.set(SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}))
    try:
        assert fail(error).message == "上传的文件是空的。请上传一张图片。"
    finally:
        LocalContext.request.reset(token)
    assert fail(error).message == str(error)  # outside a request (or an English one): as the library says it


def test_page_script_matches_gradios_frontend_texts() -> None:
    assets = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
    frontend = "".join(path.read_text(encoding="utf-8", errors="ignore") for path in assets.glob("*.js")
                       if path.stat().st_size < 3_000_000)
    for text in ("File(s) exceed the maximum allowed size of", "Invalid file type", "Only ${"):
        assert text in frontend, f"Gradio's frontend no longer says {text!r}: update ui/upload_errors.JS"
    assert "File(s) exceed the maximum allowed size of" in upload_errors.JS.replace("\\", "")
