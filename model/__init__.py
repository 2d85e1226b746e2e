"""Speech emotion recognition pipeline, installed as ``ser_studio.model``; its stages in the
order data flows: audio, corpora, augmentation, features, networks, training, evaluation,
adaptation, inference, exported (with onnx, config and cli beside them). The README's
Architecture section says what each holds.

Nothing in this package imports Qt; the desktop app in ``app/`` and the command line drive the
same code.
"""
__version__ = "0.1.0"
