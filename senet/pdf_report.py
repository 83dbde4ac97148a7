"""A report to hand out: one analysis as a two-page A4 PDF in English or Simplified Chinese.

Page 1: the photo and the heatmap on it (with the heatmap's caption and colour scale), the prediction in words
and numbers, the model's name and cross-validated accuracy, the date and the research-demo disclaimer.
Page 2: the per-stage SE channel-weight chart with its explanation.

Fonts travel with the Python packages, never with the operating system (a Space has no CJK font installed):
Latin text is set in DejaVu Sans, which ships inside matplotlib; Chinese in Noto Sans SC (SIL Open Font
License) from the ``pylopdf-fonts-zh-cn`` package, also the fallback for Chinese characters in English text.
The PDF is written with ``fpdf2`` (pure Python); both are imported only when a report is made.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .card import ModelCard
from .catalog import dataset_display_name
from .explain import CAM_METHODS, Analysis
from .heatmaps import heatmap_image, overlay
from .registry import display_name as arch_display_name
from .se_analysis import last_block_per_stage
from .se_charts import block_chart
from .texts import disclaimer, label_name, language, percent, prediction_sentence, unfamiliar_sentence

_PAGE_MARGIN = 15.0  # mm
_PHOTO_SIDE = 86.0  # mm: two photos side by side fit the 180 mm text width
_MAX_PIXELS = 900  # photos are embedded at most this many pixels per side (a report, not an archive)

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "SENet Explorer · analysis report",
        "made": "Made {date} · model: {model}",
        "photo": "The photo",
        "overlay": "{method} heatmap on the photo",
        "scale_low": "low", "scale_high": "high",
        "caption": ("Warm colours (red, yellow) mark the regions that raised the model's score for {label} the most; "
                    "blue regions contributed little. The heatmap shows where the model looked, not where a "
                    "disease is."),
        "prediction": "Prediction",
        "class": "Class", "probability": "Probability",
        "model": "The model",
        "arch": "Architecture", "data": "Trained on", "accuracy": "Accuracy",
        "cv": "{mean} ± {std} (mean of {k}-fold cross-validation)",
        "cv_incomplete": "{mean} (mean of {k} folds; the cross-validation is incomplete)",
        "test": "{value} on its test part",
        "unknown": "not recorded",
        "se_title": "How the model weighted its channels (Squeeze-and-Excitation)",
        "se_caption": ("Each SE block learns a weight between 0 and 1 for each of its feature channels, for every "
                       "photo. The bars are this photo's weights in the last SE block of each stage (named "
                       "SE_<stage>_<block> as in the SE paper); the lines are the average weights of photos of "
                       "the classes named in the legend. Similar shapes mean the network processed this photo "
                       "like the average photo of that class."),
        "page": "Page {n} of {total}",
    },
    "zh": {
        "title": "SENet Explorer · 分析报告",
        "made": "生成于 {date} · 模型：{model}",
        "photo": "照片",
        "overlay": "{method} 热力图（叠加在照片上）",
        "scale_low": "低", "scale_high": "高",
        "caption": "暖色（红、黄）标出最能提高模型对“{label}”评分的区域；蓝色区域贡献很小。"
                   "热力图显示的是模型关注的位置，而不是病变所在的位置。",
        "prediction": "预测结果",
        "class": "类别", "probability": "概率",
        "model": "模型",
        "arch": "架构", "data": "训练数据", "accuracy": "准确率",
        "cv": "{mean} ± {std}（{k} 折交叉验证的均值）",
        "cv_incomplete": "{mean}（{k} 折的均值；交叉验证不完整）",
        "test": "{value}（测试集）",
        "unknown": "未记录",
        "se_title": "模型如何为各通道加权（Squeeze-and-Excitation）",
        "se_caption": "每个 SE 模块会针对每张照片，为它的每个特征通道学习一个 0 到 1 之间的权重。"
                      "柱形是这张照片在每个阶段最后一个 SE 模块中的权重（按 SE 论文命名为 SE_<阶段>_<模块>）；"
                      "折线是图例中各类别照片的平均权重。形状越相似，说明网络处理这张照片的方式越像该类别的平均照片。",
        "page": "第 {n} 页，共 {total} 页",
    },
}


def font_files() -> dict[str, Path]:
    """The font files the report uses: ``latin``, ``latin_bold`` (DejaVu Sans, from matplotlib) and ``cjk``
    (Noto Sans SC, from the pylopdf-fonts-zh-cn package)."""
    import matplotlib
    import pylopdf_fonts_zh_cn

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {"latin": ttf / "DejaVuSans.ttf", "latin_bold": ttf / "DejaVuSans-Bold.ttf",
            "cjk": Path(pylopdf_fonts_zh_cn.sans_path())}


def accuracy_text(card: ModelCard, lang: str = "en") -> str:
    """The model's accuracy as people should quote it: the cross-validation mean ± std when the card has one."""
    words = _TEXT[language(lang)]
    metrics: Mapping[str, Any] = card.metrics
    cv = metrics.get("cv")
    accuracy = cv.get("accuracy") if isinstance(cv, Mapping) else None
    if isinstance(cv, Mapping) and isinstance(accuracy, Mapping) and isinstance(accuracy.get("mean"), int | float):
        k = int(cv.get("folds", 0) or len(accuracy.get("values") or []))
        mean = f"{accuracy['mean'] * 100:.1f} %"
        if cv.get("incomplete"):
            return words["cv_incomplete"].format(mean=mean, k=k)
        return words["cv"].format(mean=mean, std=f"{float(accuracy.get('std', 0)) * 100:.1f} %", k=k)
    test = metrics.get("test")
    value = test.get("accuracy") if isinstance(test, Mapping) else metrics.get("accuracy")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return words["test"].format(value=f"{value * 100 if value <= 1 else value:.1f} %")
    return words["unknown"]


def _wrap(lang: str) -> Any:
    """Chinese has no spaces between words: its lines break between any two characters."""
    from fpdf.enums import WrapMode

    return WrapMode.CHAR if lang == "zh" else WrapMode.WORD


def _jpeg(image: Image.Image) -> io.BytesIO:
    image = image.convert("RGB")
    image.thumbnail((_MAX_PIXELS, _MAX_PIXELS))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    buffer.seek(0)
    return buffer


def _se_chart_png(analysis: Analysis, card: ModelCard) -> io.BytesIO:
    profiled = set((card.class_profiles or {}).get("classes") or {})
    shown = [label for label, _ in analysis.top_k(len(card.labels)) if label in profiled][:2]
    figure = block_chart(analysis.excitations, last_block_per_stage(list(analysis.excitations)),
                         profiles=card.class_profiles, labels=shown, highlight=analysis.predicted, theme="light")
    figure.set_facecolor("white")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, facecolor="white")
    buffer.seek(0)
    return buffer


def _colour_scale() -> Image.Image:
    return heatmap_image(np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (12, 1)))


class _Writer:
    """An fpdf2 document with the report's fonts and a few layout helpers."""

    def __init__(self, lang: str, *, cjk_fallback: bool) -> None:
        from fpdf import FPDF

        self.lang = lang
        self.words = _TEXT[lang]
        pdf = FPDF(orientation="portrait", unit="mm", format="A4")
        pdf.set_margins(_PAGE_MARGIN, _PAGE_MARGIN, _PAGE_MARGIN)
        pdf.set_auto_page_break(True, margin=_PAGE_MARGIN + 5)
        fonts = font_files()
        pdf.add_font("latin", fname=str(fonts["latin"]))
        pdf.add_font("latin", style="B", fname=str(fonts["latin_bold"]))
        # Chinese text in Noto Sans SC (one weight: headings are set larger instead of bold). In English it is
        # only the fallback for Chinese labels or names, and left out when there are none: subsetting the 8 MB
        # font is most of the time a report takes.
        self.family = "cjk" if lang == "zh" else "latin"
        if lang == "zh" or cjk_fallback:
            pdf.add_font("cjk", fname=str(fonts["cjk"]))
            pdf.set_fallback_fonts(["latin"] if lang == "zh" else ["cjk"], exact_match=False)
        pdf.set_title(self.words["title"])
        pdf.set_creator("SENet Explorer")
        self.pdf = pdf

    def font(self, size: float, bold: bool = False, colour: tuple[int, int, int] = (31, 41, 55)) -> None:
        self.pdf.set_font(self.family, "B" if bold and self.family == "latin" else "", size)
        self.pdf.set_text_color(*colour)

    def paragraph(self, text: str, size: float = 10, *, bold: bool = False, height: float | None = None,
                  colour: tuple[int, int, int] = (31, 41, 55)) -> None:
        self.font(size, bold, colour)
        self.pdf.multi_cell(0, height or size * 0.5, text, wrapmode=_wrap(self.lang),
                            align="L", new_x="LMARGIN", new_y="NEXT")

    def boxed(self, text: str, size: float, *, fill: tuple[int, int, int], edge: tuple[int, int, int],
              colour: tuple[int, int, int], bold: bool = False) -> None:
        """A paragraph in a tinted box with a coloured left edge, as the page draws its notices."""
        self.pdf.set_fill_color(*fill)
        self.pdf.set_draw_color(*edge)
        self.font(size, bold, colour)
        self.pdf.multi_cell(0, 5.2, text, border="L", fill=True, padding=(2, 3, 2, 3), align="L",
                            wrapmode=_wrap(self.lang), new_x="LMARGIN", new_y="NEXT")

    def footer(self, number: int, total: int) -> None:
        pdf = self.pdf
        pdf.set_auto_page_break(False)
        pdf.set_xy(_PAGE_MARGIN, pdf.h - _PAGE_MARGIN)
        self.font(7.5, colour=(107, 114, 128))
        pdf.cell(pdf.epw, 4, disclaimer(self.lang), align="L")
        pdf.set_xy(_PAGE_MARGIN, pdf.h - _PAGE_MARGIN)
        pdf.cell(pdf.epw, 4, self.words["page"].format(n=number, total=total), align="R")
        pdf.set_auto_page_break(True, margin=_PAGE_MARGIN + 5)


def build_report(
    photo: Image.Image,
    analysis: Analysis,
    card: ModelCard,
    *,
    model_name: str = "",
    lang: str = "en",
    when: datetime | None = None,
    opacity: float = 0.5,
) -> bytes:
    """The report as PDF bytes.

    Args:
        photo: the photo as analysed (the heatmap is stretched onto it).
        analysis: ``senet.analyze``'s result for that photo.
        card: the model's card (labels, accuracy, class profiles).
        model_name: the name people know the model by; default the architecture's name.
        lang: ``en`` or ``zh`` (other codes fall back to English, as everywhere else).
        when: the date printed; default now (UTC).
        opacity: the heatmap's opacity on the photo.
    """
    lang = language(lang)
    model_name = model_name or arch_display_name(card.arch)
    names = model_name + "".join(card.labels) + dataset_display_name(card.data)
    writer = _Writer(lang, cjk_fallback=any(ord(character) >= 0x2E80 for character in names))
    pdf, words = writer.pdf, writer.words
    when = when or datetime.now(UTC)
    method = CAM_METHODS[analysis.method].display_name.split(" (")[0] if analysis.method in CAM_METHODS \
        else analysis.method

    pdf.add_page()
    writer.paragraph(words["title"], 17, bold=True, height=9)
    writer.paragraph(words["made"].format(date=when.strftime("%Y-%m-%d %H:%M UTC"), model=model_name), 9,
                     colour=(75, 85, 99))
    pdf.ln(2)
    # The disclaimer, in an amber box as on the page.
    writer.boxed(disclaimer(lang), 9.5, fill=(255, 251, 235), edge=(245, 158, 11), colour=(120, 53, 15))
    pdf.ln(4)

    # Photo and heatmap side by side, each fitted into a square of _PHOTO_SIDE mm.
    top = pdf.get_y()
    heat = overlay(photo, analysis.cam, opacity=opacity)
    gap = pdf.epw - 2 * _PHOTO_SIDE
    for column, (image, caption) in enumerate(((photo, words["photo"]), (heat, words["overlay"].format(
            method=method)))):
        x = _PAGE_MARGIN + column * (_PHOTO_SIDE + gap)
        width, height = image.size
        scale = _PHOTO_SIDE / max(width, height)
        w, h = width * scale, height * scale
        pdf.image(_jpeg(image), x=x + (_PHOTO_SIDE - w) / 2, y=top + (_PHOTO_SIDE - h) / 2, w=w, h=h)
        pdf.set_xy(x, top + _PHOTO_SIDE + 1.5)
        writer.font(8.5, colour=(75, 85, 99))
        pdf.cell(_PHOTO_SIDE, 4.5, caption, align="C")
    # The colour scale under the heatmap: low ... high.
    scale_x = _PAGE_MARGIN + _PHOTO_SIDE + gap
    scale_y = top + _PHOTO_SIDE + 7
    pdf.image(_colour_scale(), x=scale_x + 8, y=scale_y, w=_PHOTO_SIDE - 16, h=3.2)
    writer.font(7.5, colour=(75, 85, 99))
    pdf.set_xy(scale_x, scale_y - 0.6)
    pdf.cell(8, 4.4, words["scale_low"], align="L")
    pdf.set_xy(scale_x + _PHOTO_SIDE - 8, scale_y - 0.6)
    pdf.cell(8, 4.4, words["scale_high"], align="R")
    pdf.set_xy(_PAGE_MARGIN, scale_y + 5)
    writer.paragraph(words["caption"].format(label=label_name(analysis.target, lang)), 8.5, height=4.3,
                     colour=(75, 85, 99))
    pdf.ln(3)

    # The prediction: the sentence, then every class with its probability and a bar. An unfamiliar photo gets the
    # page's warning first, in a red box, and its bars lose their highlight (the answer means little).
    writer.paragraph(words["prediction"], 12.5, bold=True, height=7)
    if analysis.unfamiliar:
        writer.boxed(unfamiliar_sentence(lang), 10, fill=(254, 242, 242), edge=(220, 38, 38), colour=(153, 27, 27),
                     bold=True)
        pdf.ln(1.5)
    writer.paragraph(prediction_sentence(analysis.probabilities, lang, card=card, unfamiliar=analysis.unfamiliar),
                     10.5, height=5.6)
    pdf.ln(1.5)
    for label, probability in analysis.top_k(len(analysis.probabilities)):
        strong = label == analysis.predicted and not analysis.unfamiliar
        writer.font(9.5, bold=strong)
        y = pdf.get_y()
        pdf.cell(45, 5.4, label_name(label, lang))
        pdf.cell(20, 5.4, percent(probability), align="R")
        pdf.set_fill_color(229, 231, 235)
        pdf.rect(_PAGE_MARGIN + 70, y + 1.3, 100, 2.8, style="F")
        pdf.set_fill_color(*((249, 115, 22) if strong else (148, 163, 184)))
        pdf.rect(_PAGE_MARGIN + 70, y + 1.3, max(0.3, 100 * probability), 2.8, style="F")
        pdf.ln(5.4)
    pdf.ln(3)

    # The model.
    writer.paragraph(words["model"], 12.5, bold=True, height=7)
    dataset = dataset_display_name(card.data) or words["unknown"]
    classes = f"{card.num_classes} classes" if lang == "en" else f"{card.num_classes} 类"
    comma = "，" if lang == "zh" else ", "
    for key, value in ((words["arch"], f"{arch_display_name(card.arch)}{comma}{classes}"),
                       (words["data"], dataset), (words["accuracy"], accuracy_text(card, lang))):
        writer.font(9.5, bold=True)
        pdf.cell(32, 5.2, key)
        writer.font(9.5)
        pdf.multi_cell(0, 5.2, value, new_x="LMARGIN", new_y="NEXT", wrapmode=_wrap(lang))

    # Page 2: the SE chart.
    pdf.add_page()
    writer.paragraph(words["se_title"], 12.5, bold=True, height=7)
    pdf.ln(1)
    pdf.image(_se_chart_png(analysis, card), x=_PAGE_MARGIN, w=pdf.epw)
    pdf.ln(2)
    writer.paragraph(words["se_caption"], 9, height=4.6, colour=(75, 85, 99))

    total = pdf.page
    for number in range(1, total + 1):
        pdf.page = number
        writer.footer(number, total)
    pdf.page = total
    return bytes(pdf.output())


def write_report(path: str | Path, photo: Image.Image, analysis: Analysis, card: ModelCard, **options: Any) -> Path:
    """:func:`build_report` written to ``path``; returns the path."""
    path = Path(path)
    path.write_bytes(build_report(photo, analysis, card, **options))
    return path


__all__ = ["accuracy_text", "build_report", "font_files", "write_report"]
