"""digit-recognizer: a convolutional network for Kaggle's "Digit Recognizer" (MNIST), as a notebook report.

The package in layers, from the ground up. A module imports only from its own
layer or those below it (tests/test_structure.py holds the package to this):

1. `util/`      paths, atomic files, digests and locks, values shown to people.
2. `config`, `parameters`, `formats/`, `data`: the image format, the networks
   and their recipes; every parameter with its parser; Kaggle's CSV, MNIST's IDX
   and the submission format, read strictly; the data folder and the split.
3. `runs/`      a run worked out once from its parameters, its files, the kept
   runs compared and chosen, and removed file by file.
4. `model`, `train`, `prepare`, `calibration`, `evaluate`, `explain`, `compare`, `predict`, `plots`: the
   work the notebooks and the commands do (an image in MNIST's form or "not a digit"; calibrated
   probabilities and "unsure"; saliency and the embedding map; whether one run is better than another).
5. `report/`    the summary page, the HTML book or page, Try it and the widget.
6. `pipeline/`  what `make` runs: the command line parsed once, the steps in
   their one order, the notebooks and their kernel, workers, sweeps, Kaggle.

The notebooks import layers 1 to 5; `make` calls layer 6 (`python -m digits.pipeline`).
"""

__version__ = "1.0.0"
