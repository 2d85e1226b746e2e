"""The exported model, ``python main.py export``: a checkpoint written as ``X.onnx`` with its
sidecar ``X.json`` (``write``), and loaded and run on onnxruntime with no torch network
(``runtime``), as a Predictor runs a checkpoint.
"""
