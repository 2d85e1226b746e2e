"""Inference: the Predictor (``predictor``: a checkpoint or export in, probabilities out), what
it returns (``prediction``), the sliding-window engine that live and file analysis share
(``window_stream``, grouping windows into ``segments``) and a file's timeline (``timeline``).
"""
