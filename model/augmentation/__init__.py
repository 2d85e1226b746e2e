"""Augmentation: in feature space (``spec``: gain, SpecAugment masks) and on the waveform
as recording chains (``channel``: filters, codec, limiter, rooms) and the named recording
conditions of the robustness benchmark (``conditions``). Training renders its cached
variants with them (model.training.variants).
"""
