"""The Gradio app: one subpackage per tab (``inspect``, ``review``, ``evaluate``, ``jobs``), each a tab module and its
views, plus the widgets, forms and messages they share and the shared model cache. The logic they show lives in the
feature packages; ``python app.py`` and ``drywall-qa app`` build and start it with
:func:`drywall_qa.app.server.serve`.
"""
