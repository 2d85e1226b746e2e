"""Configuration: the frontend, model and training config dataclasses and their dict
forms (``schema``), and the checks that name a bad option (``checks``).
"""
