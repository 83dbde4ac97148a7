"""Card text is shown as text: markdown built from a card has no images, links, forms or raw HTML in it."""

from __future__ import annotations

import html

import pytest
from markdown_it import MarkdownIt

import senet
from senet import texts
from senet.markdown_text import code_block, plain

HOSTILE = [
    '<img src="http://127.0.0.1:9/pixel.png">',
    "![tracker](http://127.0.0.1:9/t.png)",
    "[click](javascript:alert(1)) and [site](https://example.com)",
    '<form action="http://127.0.0.1:9"><input type="password" name="p"></form>',
    "<script>alert(1)</script>",
    "visit https://example.com or www.example.com or mail me@example.com",
    "# Heading\n\n- list\n1. item\n> quote",
    "| a | b |\n|---|---|\n| c | d |",
    "&lt;img src=x&gt; **bold** _em_ `code` ~~strike~~ $x$",
]
TAGS = ("<img", "<a ", "<form", "<input", "<script", "<h1", "<h2", "<li", "<blockquote", "<strong", "<em",
        "<code", "<table", "<del")


def _render(markdown: str) -> str:
    # html=True: raw HTML in the source would come through, as it does in the browser's renderer.
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table").render(markdown)


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_text_renders_as_the_same_characters(text):
    rendered = _render(plain(text))
    for tag in TAGS:
        assert tag not in rendered, (tag, rendered)
    assert "http://" not in plain(text) and "https://" not in plain(text)  # no bare URL left to autolink
    assert "www.example" not in plain(text)
    shown = html.unescape(rendered.replace("<p>", "").replace("</p>", "")).split()
    assert shown == text.split(), shown


def test_code_blocks_cannot_be_closed_from_inside():
    rendered = _render(code_block("```\n<img src=x>\n```"))
    assert rendered.count("<pre>") == 1 and "<img" not in rendered


def test_model_card_markdown_renders_card_text_as_text():
    card = senet.ModelCard(
        arch="se_resnet18", labels=["<b>Healthy</b>", "![x](http://e/x.png)"], title=HOSTILE[0],
        description=HOSTILE[3], citation="```\n" + HOSTILE[1] + "\n```", license=HOSTILE[2], limitations=HOSTILE[4],
        data={"name": HOSTILE[5], "<img src=x>": "[a](http://e)", "counts": {"train": {"<b>Healthy</b>": 3}}},
        metrics={"test": {"accuracy": 0.9, "per_class": {"<i>x</i>": {"f1": 0.5}}}, "fold": "<img src=y>",
                 "cv": {"folds": 2, "accuracy": {"mean": 0.8, "std": 0.1, "values": [0.7, 0.9]},
                        "incomplete": "<form>"}},
        training={"command": "```\n<img src=z>", "recipe": {"<script>": "x"}},
        backbone={"checkpoint": "<img src=w>", "data": {"sources": [{"name": "![b](http://e/b.png)"}]}})
    for lang in ("en", "zh"):
        rendered = _render(texts.model_card_markdown(card, lang))
        for tag in ("<img", "<a ", "<form", "<input", "<script", "<b>", "<i>"):
            assert tag not in rendered, (tag, lang)
        assert "&lt;img src=&quot;http://127.0.0.1:9/pixel.png&quot;&gt;" in rendered  # the title, as text
