"""Serving many clients from one process: the scheduler that shares the model unit by unit
(:mod:`.scheduler`), the per-request work budget and one large request at a time (:mod:`.budget`), the service
that runs predictions through both (:mod:`.service`), and who a request comes from (:mod:`.clients`). Nothing here
imports gradio."""
