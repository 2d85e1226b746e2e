"""Emotion classifiers over frame features: the seed's baseline and enhanced networks
(``baseline``, ``enhanced``, their ``layers``), an ensemble of them (``ensemble``), a linear
classifier on pooled utterance statistics (``stats_branch``), what they return (``output``),
``registry`` (build_network: a network from its ModelConfig) and the checkpoint file that
stores one (``checkpoint``).
"""
