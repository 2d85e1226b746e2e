"""Training wizard: choose a corpus and settings, run ``main.py train`` in a QProcess, show the
results and hand the new model to the live view (``TrainingWizard.modelReady``)."""
from app.wizard.wizard import TrainingWizard

__all__ = ["TrainingWizard"]
