"""Serving many clients from one process: admission lanes for heavy jobs, per-session result storage within a
memory budget, stop requests, size limits, disk retention and malloc arenas."""
