"""Speech emotion recognition pipeline: audio, corpora, features, networks, training, inference.

Nothing in this package imports Qt; the desktop app in ``app/`` and the command line drive the
same code.
"""
__version__ = "0.1.0"
