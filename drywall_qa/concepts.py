"""Which text prompts a model knows: a labelled list of paraphrases of the bundled model's five trained prompts
and of unrelated wall defects and objects, each prompt's closest calibrated prompt and cosine similarity
(:meth:`~drywall_qa.segmenter.Segmenter.closest_concepts`), and the similarity bar that separates them.

The bar is chosen on this same list (the accuracy that maximises it is optimistic); the leave-one-out accuracy
re-chooses it without each prompt in turn and scores that prompt, an estimate for prompts not on the list.

    python -m drywall_qa.concepts                 # the bundled model; --model for another checkpoint
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from drywall_qa.cli_args import description
from drywall_qa.errors import InputError, ModelLoadError
from drywall_qa.segmenter import Segmenter

#: paraphrases of "segment crack", "segment wall crack", "segment taping area", "segment joint/tape" and
#: "segment drywall seam": a user asking for one of the two trained concepts
KNOWN = (
    "segment cracks", "segment hairline crack", "segment the crack in the wall", "segment cracked drywall",
    "segment wall cracks", "segment drywall crack", "segment plaster crack", "crack", "find the cracks",
    "segment crack lines", "segment fracture in the wall", "segment fissure", "segment cracking",
    "segment taping", "segment joint tape", "segment tape joint", "segment drywall joint",
    "segment the seams between drywall boards", "segment drywall tape", "segment taped seam", "segment drywall seams",
    "segment taped joints", "segment taping areas", "segment joint compound", "segment mudded joint", "segment seam",
    "segment joints between panels", "segment drywall joints and tape", "segment tape", "segment joints",
    "segment seams",
)
#: wall defects and objects neither dataset annotates
UNKNOWN = (
    "segment water stain", "segment screw holes", "segment mould", "segment mold", "segment nail pops",
    "segment window", "segment outlet", "segment person", "segment door", "segment light switch", "segment pipe",
    "segment sky", "segment wall", "segment peeling paint", "segment hole in the wall", "segment dent",
    "segment scratch", "segment corner bead", "segment mildew", "segment rust", "segment graffiti",
    "segment baseboard", "segment ceiling", "segment drywall", "segment damp patch", "segment screw", "segment nail",
    "segment power socket", "segment dog", "segment water damage", "segment paint drips", "segment stud",
    "segment insulation", "segment electrical wire", "segment tile", "segment brick", "segment stain",
    "segment hole", "segment paint", "segment light fixture",
)
LABELLED: tuple[tuple[str, bool], ...] = tuple((p, True) for p in KNOWN) + tuple((p, False) for p in UNKNOWN)
#: a measured prompt: (prompt, known, closest calibrated prompt, similarity)
Row = tuple[str, bool, str, float]


def accuracy(similarities: np.ndarray, known: np.ndarray, bar: float) -> float:
    """Fraction of prompts the bar labels right: known when the similarity is at least ``bar``."""
    return float(np.mean((similarities >= bar) == known))


def choose_bar(similarities: np.ndarray, known: np.ndarray, ceiling: float = 1.0) -> float:
    """The bar, at most ``ceiling``, with the highest accuracy: one of the midpoints between neighbouring
    similarities (the middle one of those that tie)."""
    values = np.unique(similarities)
    candidates = [c for c in (values[:-1] + values[1:]) / 2 if c <= ceiling] or [ceiling]
    scores = np.array([accuracy(similarities, known, c) for c in candidates])
    best = np.flatnonzero(scores == scores.max())
    return float(candidates[best[len(best) // 2]])


def leave_one_out(similarities: np.ndarray, known: np.ndarray, ceiling: float = 1.0) -> float:
    """Accuracy on each prompt of a bar chosen on all the others."""
    right = [(similarities[i] >= choose_bar(np.delete(similarities, i), np.delete(known, i), ceiling)) == known[i]
             for i in range(len(similarities))]
    return float(np.mean(right))


def measure(segmenter: Segmenter, labelled: Sequence[tuple[str, bool]] = LABELLED) -> list[Row]:
    """Per labelled prompt: ``(prompt, known, closest calibrated prompt, similarity)``."""
    matches = segmenter.closest_concepts([prompt for prompt, _ in labelled])
    if None in matches:
        raise InputError("model", "the checkpoint has no calibrated prompts to compare with",
                         "run python -m drywall_qa.calibrate on it first")
    return [(prompt, known, *match) for (prompt, known), match in zip(labelled, matches)]


def report(rows: Sequence[Row], stored: float | None, ceiling: float | None) -> list[str]:
    """Lines: each prompt by similarity, then the chosen bar's, the stored bar's and leave-one-out accuracy."""
    similarities = np.array([row[3] for row in rows])
    known = np.array([row[1] for row in rows])
    bar = choose_bar(similarities, known, ceiling or 1.0)
    lines = [f"{'label':<8} {'sim':>5}  {'flag':<8} {'prompt':<42} closest"]
    for prompt, is_known, closest, similarity in sorted(rows, key=lambda row: row[3]):
        flag = "known" if similarity >= bar else "UNKNOWN"
        mark = "" if (similarity >= bar) == is_known else "  <- wrong"
        lines.append(f"{'known' if is_known else 'unknown':<8} {similarity:5.3f}  {flag:<8} {prompt:<42} "
                     f"{closest}{mark}")
    count = f"{len(rows)} prompts ({int(known.sum())} paraphrases, {int((~known).sum())} unrelated)"
    lines.append(f"{count}: bar chosen on this list {bar:.3f}, accuracy {accuracy(similarities, known, bar):.1%}")
    if stored is not None:
        lines.append(f"stored bar (known_concept_similarity) {stored:.3f}: accuracy "
                     f"{accuracy(similarities, known, stored):.1%}")
    lines.append(f"leave-one-out accuracy (bar re-chosen without each prompt): "
                 f"{leave_one_out(similarities, known, ceiling or 1.0):.1%}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drywall_qa.concepts", description=description(__doc__))
    parser.add_argument("--model", help="checkpoint folder or alias (default: the bundled model)")
    args = parser.parse_args(argv)
    try:
        segmenter = Segmenter.load(args.model, device="cpu")
        rows = measure(segmenter)
    except (InputError, ModelLoadError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    backend = segmenter.backend
    print("\n".join(report(rows, backend.known_concept_similarity, backend.paraphrase_similarity)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
