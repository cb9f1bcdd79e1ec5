"""Which text prompts a model knows: a labelled list of paraphrases of the bundled model's five trained prompts
and of unrelated wall defects and objects, each prompt's closest calibrated prompt and cosine similarity
(:meth:`~drywall_qa.core.segmenter.Segmenter.closest_concepts`), and the similarity bar that separates them.

    drywall-qa concepts                 # the bundled model; --model for another checkpoint
"""

from __future__ import annotations

import argparse
import sys

from drywall_qa.calibration.concepts import measure, report
from drywall_qa.cli.args import description
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.segmenter import Segmenter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drywall-qa concepts", description=description(__doc__))
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
