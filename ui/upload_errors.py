"""Upload refusals in Chinese on a Chinese page: Gradio's own (in the page) and ``senet.image_io``'s (here).

Gradio 6.31's frontend refuses a file that is too large (``File(s) exceed the maximum allowed size of 20.0 MB:
"x.jpg"``) or of the wrong type (``Invalid file type: x.txt. Only image/* allowed.``) before any request reaches
the server, in a toast titled ``Error`` / ``Warning``; none of these strings goes through its i18n tables (they
are built with the file names and sizes in them). The server's own refusal of an oversized upload (``File size
exceeded maximum allowed size``) only reaches API clients: the page checks the size first.

``JS`` runs once when the page loads: on a Chinese browser (the same ``navigator.language`` Gradio's i18n
follows) it watches the toasts and rewrites exactly these messages and titles, keeping the sizes and names.

``in_language`` gives the Chinese of the library's refusals (``ImageRejected``): the library keeps one English
sentence per refusal, the app the words of each language. Handlers do not call it directly: ``ui/refusals.py``
(every refusal of the page, this table included) is the one way in.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from senet.image_io import FORMAT_NAMES

_FORMATS_ZH = FORMAT_NAMES.replace(", ", "、").replace(" or ", " 或 ")
_SIZE = r"\(([^()]*)\)"
# (English pattern from senet.image_io, Chinese with the same groups); tests run every refusal through it.
Chinese = str | Callable[[re.Match[str]], str]  # a replacement template, or a function of the match
REFUSALS_ZH: tuple[tuple[re.Pattern[str], Chinese], ...] = tuple((re.compile(pattern), zh) for pattern, zh in (
    (r"^Please upload an image first\.$", "请先上传一张图片。"),
    (r"^This file is not an image that can be read\.(?: Please upload a .* photo\.)?$",
     f"这个文件不是可以读取的图片。请上传 {_FORMATS_ZH} 照片。"),
    (r"^The image file is damaged or incomplete and could not be decoded\. Please upload the original photo\.$",
     "图片文件已损坏或不完整，无法解码。请上传原始照片。"),
    (r"^The image data is not a valid data URL\. Please upload the image as a file\.$",
     "图片数据不是有效的 data URL。请以文件形式上传图片。"),
    (r"^The file is too large " + _SIZE + r"; the limit is (.*)\.$", r"文件太大（\1）；上限为 \2。"),
    (r"^The image data in the request is damaged \(invalid base64\)\. Please upload the image as a file\.$",
     "请求中的图片数据已损坏（base64 无效）。请以文件形式上传图片。"),
    (r"^The uploaded file could not be found\. Please upload it again\.$", "找不到上传的文件。请重新上传。"),
    (r"^The upload is not a regular file\. Please upload an image file\.$", "上传的不是普通文件。请上传图片文件。"),
    (r"^The uploaded file could not be read\. Please upload it again\.$", "无法读取上传的文件。请重新上传。"),
    (r"^The uploaded file is empty\. Please upload an image\.$", "上传的文件是空的。请上传一张图片。"),
    (r"^The image file is incomplete: it declares (\d+) × (\d+) pixels but holds data for only (.*) of them\. "
     r"Please upload the original photo\.$",
     lambda m: f"图片文件不完整：声明为 {m[1]} × {m[2]} 像素，但只有其中{_share(m[3])}的数据。请上传原始照片。"),
    (r"^This floating-point image contains invalid values .*$",
     "这张浮点图片含有无效值（NaN 或无穷大），无法显示为图片。请上传普通的 RGB JPEG 或 PNG。"),
    (r"^This floating-point image has the same value in every pixel.*$",
     "这张浮点图片每个像素的值都相同，没有可分析的内容。请上传普通的 RGB JPEG 或 PNG。"),
    (r"^The image is too large(?: \((\d+) × (\d+) pixels\))?\. The limit is ([\d.e+]+) megapixels; .*$",
     lambda m: f"图片太大{f'（{m[1]} × {m[2]} 像素）' if m[1] else ''}。上限为 {m[3]} 百万像素；"
               "请缩小尺寸（几百万像素就足够了）。"),
    (r"^The image is too small \((\d+) × (\d+) pixels\); each side must be at least (\d+) pixels\.$",
     r"图片太小（\1 × \2 像素）；每条边至少需要 \3 像素。"),
    (r"^The image is too long and thin \((\d+) × (\d+) pixels\)\. Please crop it so that its long side is at "
     r"most (.*) times its short side\.$", r"图片太细长（\1 × \2 像素）。请裁剪，使长边不超过短边的 \3 倍。"),
    (r"^This image uses a colour format \((.*)\) that cannot be converted\. .*$",
     r"这张图片使用了无法转换的颜色格式（\1）。请将其另存为普通的 RGB JPEG 或 PNG。"),
))


def in_language(message: str, language: str) -> str:
    """An upload refusal of ``senet.image_io`` in ``language`` (``en``: as it is; unknown messages: as they are)."""
    if language != "zh":
        return message
    for pattern, zh in REFUSALS_ZH:
        match = pattern.match(message)
        if match:
            return zh(match) if callable(zh) else match.expand(zh)
    return message


def _share(text: str) -> str:
    """``less than 1 %`` / ``about 2 %`` in Chinese."""
    return " " + text.replace("less than ", "不到 ").replace("about ", "约 ") + " "

# Patterns are Gradio 6.31's texts (gradio/templates/frontend/assets: index-*.js for the size, src-*.js for the
# type); tests/test_browser.py checks both on a real page, so a Gradio upgrade that changes them fails a test.
JS = r"""() => {
  if (!(navigator.language || '').toLowerCase().startsWith('zh')) return;
  const rules = [
    [/^File\(s\) exceed the maximum allowed size of (.+?): (.*)$/s,
     (m, size, names) => `文件超过允许的最大大小 ${size}：${names}`],
    [/^Invalid file types?: (.*?)(?: and (\d+) more)?\. Only (.*) allowed\.$/s,
     (m, names, more, types) => `文件类型不受支持：${names}${more ? ` 等另外 ${more} 个` : ''}。只接受 ${types}。`],
    [/^File size exceeded maximum allowed size.*$/s, () => '文件超过允许的最大大小。'],
    [/^Error$/, () => '错误'],
    [/^Warning$/, () => '警告'],
  ];
  const translate = (node) => {
    const text = node.nodeValue.trim();
    for (const [pattern, replace] of rules) {
      const match = text.match(pattern);
      if (match) { node.nodeValue = replace(...match); return; }
    }
  };
  const visit = (root) => {
    if (!root || root.nodeType !== 1) return;
    const toasts = root.matches('[data-testid="toast-body"]') ? [root]
      : [...root.querySelectorAll('[data-testid="toast-body"]')];
    const inside = root.closest('[data-testid="toast-body"]');
    if (!toasts.length && inside) toasts.push(inside);
    for (const toast of toasts) {
      const walker = document.createTreeWalker(toast, NodeFilter.SHOW_TEXT);
      while (walker.nextNode()) translate(walker.currentNode);
    }
  };
  new MutationObserver((records) => {
    if (!document.querySelector('[data-testid="toast-body"]')) return;  // cheap while no toast is shown
    for (const record of records) {
      if (record.type === 'characterData') visit(record.target.parentElement);
      record.addedNodes.forEach((node) => visit(node.nodeType === 3 ? node.parentElement : node));
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""
