"""onnxruntime underneath the stages: opening a graph file (``session``) and the cache of graphs
exported on the fly and checked against torch (``cache``: a checkpoint's network, the GE2E
LSTM). Imports nothing of the stages above it, so speech detection, frontends and inference can
all use it.
"""
