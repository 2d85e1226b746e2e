"""How the model in use was chosen: the phrases shown with it in the status bar's Model field and
in the Model box's tooltip (app/shell/main_window.py sets them as models load)."""
from __future__ import annotations

ORIGIN_CLI = "given with --model"
ORIGIN_REMEMBERED = "the model used last time (choose Shipped default model to go back)"
ORIGIN_SHIPPED = "shipped with the app"
ORIGIN_BOX = "chosen in the Model box"
ORIGIN_OPENED = "opened with File › Open model"
ORIGIN_RUN_FOLDER = "opened with File › Open run folder"
ORIGIN_WIZARD = "trained in the wizard"
