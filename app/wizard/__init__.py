"""Training wizard: choose a corpus and settings, run ``main.py train`` in a QProcess, show the
results and hand the new model to the live view (``wizard.TrainingWizard.modelReady``). The
pages (``setup_page``, ``corpus_page``, ``train_page``, ``summary_page``, ``results``) are put
together in ``wizard``; ``wizard_link`` opens it from the main window and holds the
window's close while a training runs.
"""
