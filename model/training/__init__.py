"""Training: the data pipeline (``data``, ``folds``, ``speaker_norms``, ``variants``: the
cached recording-chain copies of the training utterances), the training loop
(``trainer``, ``members``, ``schedules``), a whole cross-validated run (``experiment``) and the
progress events a run reports (``progress``).
"""
