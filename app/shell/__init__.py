"""The main window and its frame: start-up and logging (``launch``), the window that composes
the areas (``main_window``), its menus, status bar and About box, the theme, the saved settings,
the loaded model's description (``model_info``, ``model_origin``), torch's thread count and the
small background-task helper the History and wizard areas share.
"""
