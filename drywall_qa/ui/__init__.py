"""The Gradio app: one module per tab, plus model selection, data-split access, review storage and exports.

``python app.py`` builds it with :func:`drywall_qa.ui.app.build_app` and starts it with
:func:`drywall_qa.ui.app.launch`.
"""
