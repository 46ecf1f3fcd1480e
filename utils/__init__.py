"""The course library: data, text, models, training, similarity, plots, widgets and grading.

Notebooks import from the submodules, e.g. `from utils.data import load_rotten_tomatoes`.
"""
