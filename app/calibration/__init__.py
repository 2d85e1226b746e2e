"""Calibration to the user's voice: speaker profiles (``profiles``), the recording dialog
(``calibration_dialog``) and the controller the main window owns (``calibration``).
"""
