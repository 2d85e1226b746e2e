"""Stored results: the SQLite history (``history_store``), the History tab (``history_panel``)
and its pieces: table model, probability chart, audio player (``history_widgets``).
"""
