"""Gradio's own upload refusals in Chinese on a Chinese page.

Gradio 6.31's frontend refuses a file that is too large (``File(s) exceed the maximum allowed size of 20.0 MB:
"x.jpg"``) or of the wrong type (``Invalid file type: x.txt. Only image/* allowed.``) before any request reaches
the server, in a toast titled ``Error`` / ``Warning``; none of these strings goes through its i18n tables (they
are built with the file names and sizes in them). The server's own refusal of an oversized upload (``File size
exceeded maximum allowed size``) only reaches API clients: the page checks the size first.

``JS`` runs once when the page loads: on a Chinese browser (the same ``navigator.language`` Gradio's i18n
follows) it watches the toasts and rewrites exactly these messages and titles, keeping the sizes and names.
"""

from __future__ import annotations

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
    const toasts = root.matches?.('[data-testid="toast-body"]') ? [root]
      : [...(root.querySelectorAll?.('[data-testid="toast-body"]') || [])];
    const inside = root.closest?.('[data-testid="toast-body"]');
    if (!toasts.length && inside) toasts.push(inside);
    for (const toast of toasts) {
      const walker = document.createTreeWalker(toast, NodeFilter.SHOW_TEXT);
      while (walker.nextNode()) translate(walker.currentNode);
    }
  };
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === 'characterData') visit(record.target.parentElement || document.body);
      record.addedNodes.forEach((node) => visit(node.nodeType === 3 ? node.parentElement : node));
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""
