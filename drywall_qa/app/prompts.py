"""Prompt input shared by the tabs: registered prompts ticked in a list plus free text, cleaned and capped."""

from __future__ import annotations

import re
from collections.abc import Sequence

from drywall_qa.core.errors import InputError
from drywall_qa.core.segmenter import clean_prompt
from drywall_qa.data.coco import DATASETS

#: most prompts one request may run (each costs a decoder pass)
MAX_PROMPTS = 8
#: longer prompts are cut here; the model may truncate shorter ones to its token limit (the status line says so)
MAX_PROMPT_CHARS = 200
#: every registered prompt, in registry order
KNOWN_PROMPTS: list[str] = list(dict.fromkeys(p for spec in DATASETS.values() for p in spec.prompts))

_SEPARATORS = re.compile(r"[,;\n]")


def parse_prompts(selected: Sequence[str] | None, typed: str | None,
                  required: bool = True) -> tuple[list[str], list[str]]:
    """``(prompts, notes)`` from ticked prompts and free text (separated by commas, semicolons or new lines).

    Duplicates are dropped; a prompt over ``MAX_PROMPT_CHARS`` is cut and a note says so. Raises
    :class:`InputError` when more than ``MAX_PROMPTS`` remain, or none when ``required`` (a visual prompt may
    stand alone).
    """
    candidates = [*(selected or []), *_SEPARATORS.split(typed or "")]
    prompts, notes = [], []
    for prompt in dict.fromkeys(filter(None, map(clean_prompt, candidates))):
        if len(prompt) > MAX_PROMPT_CHARS:
            notes.append(f"a prompt of {len(prompt)} characters was cut to {MAX_PROMPT_CHARS}")
            prompt = prompt[:MAX_PROMPT_CHARS].rstrip()
        if prompt not in prompts:
            prompts.append(prompt)
    if not prompts and required:
        raise InputError("prompts", "no prompt given", "tick a prompt or type one, e.g. 'segment crack'")
    if len(prompts) > MAX_PROMPTS:
        raise InputError("prompts", f"{len(prompts)} prompts given, at most {MAX_PROMPTS} run at once",
                         "remove some prompts")
    return prompts, notes
