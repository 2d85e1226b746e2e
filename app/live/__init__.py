"""Microphone to emotion: the input devices and their stream (``devices``, ``recorder``,
``replay``), the ring buffer between the audio callback and the worker, speech detection and
segments (``live_vad``, ``segments``), the inference worker and its thread, the listening
controller and the Live tab's widgets (``controls``, ``live_panel``, ``level_meter``).
"""
