"""Command-line interface: ``python main.py <command> [options]`` (``main``), one module
per command.
"""
