"""Emotional speech corpora: one ``Utterance`` record per labelled utterance (``record``),
whatever the source (``iemocap``, ``ravdess``, ``manifest``); ``corpus`` loads one
(``load_corpus``: the reader picked from the path, labels mapped, classes selected);
``labels`` and ``checks`` hold the label maps and the checks of a loaded corpus; ``synth`` and
``synth_speech`` make synthetic corpora.
"""
