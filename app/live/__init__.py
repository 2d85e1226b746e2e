"""Microphone to emotion: the input devices and their stream (``devices``, ``recorder``,
``replay``), the inference worker that moves windows into the library's sliding-window engine
(model.inference.window_stream) and results out, its thread, the listening controller and the
Live tab's widgets (``controls``, ``live_panel``, ``level_meter``).
"""
