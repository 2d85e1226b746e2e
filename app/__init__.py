"""SER Studio desktop app (PyQt5): live microphone recognition, file analysis, history and the
training wizard. Start it with ``python main.py`` (see app/launch.py for the options)."""
