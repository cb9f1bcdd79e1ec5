"""Serving many clients from one process: the scheduler that shares the model unit by unit (:mod:`.scheduler`), the
per-request work budget and one large request at a time (:mod:`.budget`), the service that runs predictions through
both (:mod:`.service`), who a request comes from (:mod:`.clients`); admission lanes for heavy jobs (:mod:`.lanes`),
per-session result storage within a memory budget, stop requests, size limits, disk retention and malloc arenas.
Nothing here imports gradio."""
