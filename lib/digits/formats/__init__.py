"""Formats: the files of the competition and of MNIST, each read strictly: Kaggle's train.csv and test.csv,
MNIST's original IDX files, and the submission (`ImageId,Label`). A bad file is one line naming the file, line
and column.

Imports digits.util and digits.config.
"""
