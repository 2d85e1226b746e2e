"""Inference: the Predictor (``predictor``: a checkpoint or export in, probabilities out),
what it returns (``prediction``) and a long file's timeline (``timeline``, reading the file in
blocks with ``file_reads``).
"""
