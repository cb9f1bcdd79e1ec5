"""drywall-qa web app: inspect photos, review predictions against ground truth, evaluate splits.

    python app.py                                  # bundled model, data from DRYWALL_QA_DATA / ./data / ../shared/data
    python app.py --model runs/lite/best --data-root ../shared/data --port 7860

The same as ``drywall-qa app`` (``python app.py --help`` lists the options).
"""

from drywall_qa.cli.app import main

if __name__ == "__main__":
    main(prog="python app.py")
