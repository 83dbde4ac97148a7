"""SENet Explorer's Gradio UI: one module per tab, shared widgets and the page's words.

Gradio-only: everything about models, analyses and charts' data lives in ``senet``.
"""
