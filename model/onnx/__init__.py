"""onnxruntime underneath the stages: opening a graph file (``session``), int8 quantisation of a
graph's MatMuls (``quantize``) and the cache of graphs exported on the fly and checked against
torch (``cache``: a checkpoint's network, the GE2E LSTM, the Whisper encoder). Imports nothing
of the stages above it, so speech detection, frontends and inference can all use it.
"""
