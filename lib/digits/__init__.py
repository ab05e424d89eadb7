"""digit-recognizer: a convolutional network for Kaggle's "Digit Recognizer" data."""

import os

# TensorFlow prints pages of start-up notes at import; keep warnings and errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "1.0.0"
