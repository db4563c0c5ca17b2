"""Datasets of the repository: ``datasets.demo`` generates the synthetic demo sets; real data goes in ``datasets/real``.

Both ``datasets/generated`` (demo output) and ``datasets/real`` are git-ignored.
"""
