"""Untrusted text inside generated markdown: shown as the same characters, never as markup.

A model card is a file anyone can drop into ``checkpoints/``; its title, description, citation, labels and data
notes end up in markdown the app renders. Markdown passes raw HTML through and turns ``![](http://...)`` into an
image the browser fetches, ``<form>`` into a live form, and bare URLs into links. :func:`plain` escapes every
character that could start such markup (CommonMark lets any ASCII punctuation be escaped with a backslash, so
the text still reads the same); :func:`code_block` fences text so that nothing in it can close the fence.
"""

from __future__ import annotations

import re

# Inline markup (emphasis, code, links, images, HTML, entities, tables, strike-through, maths) and autolink
# schemes ("http:", "mailto:", "user@host"). Other punctuation reads the same escaped or not; left alone so that
# generated .md files stay readable.
_INLINE = re.compile(r"([\\`*_\[\]<>!|~$&:@{}])")
_WWW = re.compile(r"(?i)\b(www)\.")  # "www.example.com" autolinks without a scheme
_BLOCK_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])")  # headings, quotes, lists at the start of a paragraph


def plain(text: object) -> str:
    """``text`` as markdown that renders as exactly these characters: no HTML, links, images or formatting.

    Line breaks inside a paragraph become spaces; blank lines still separate paragraphs.
    """
    paragraphs = re.split(r"\n\s*\n", str(text).replace("\r", ""))
    out = []
    for paragraph in paragraphs:
        line = " ".join(paragraph.split("\n")).strip()
        line = _WWW.sub(r"\1\\.", _INLINE.sub(r"\\\1", line))
        out.append(_BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2) if len(m.group(2)) == 1
                                    else m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], line))
    return "\n\n".join(part for part in out if part)


def code_block(text: object) -> str:
    """``text`` in a fenced code block whose fence is longer than any backtick run inside it."""
    body = str(text).replace("\r", "")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


__all__ = ["code_block", "plain"]
