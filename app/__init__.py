"""SER Studio desktop app (PyQt5): live microphone recognition, file analysis, history and the
training wizard. Start it with ``python main.py`` (see app/shell/launch.py for the options).

One subpackage per area; areas talk through Qt signals and small public methods, never through
another object's private attributes (tests/app/test_app_boundaries.py checks it):
``shell`` (the main window and what it is made of), ``live`` (microphone to emotion),
``files`` (analysed files), ``history`` (stored results), ``wizard`` (training) and
``calibration`` (speaker profiles).
"""
