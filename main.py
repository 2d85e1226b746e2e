"""Entry point: ``python main.py`` starts the desktop app; ``python main.py COMMAND`` runs a
command-line tool (corpus, synth, extract, train, evaluate, predict; each has --help)."""
from __future__ import annotations

import sys

from ser_studio.model.cli.main import COMMANDS


def main(argv: list[str]) -> int:
    """Dispatch to the command line when the first argument names a command, else the GUI."""
    if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help")):
        from ser_studio.model.cli.main import main as cli_main

        return cli_main(argv)
    from ser_studio.app.shell.launch import main as gui_main

    return gui_main(argv)


def entry() -> None:
    """Console-script entry point (``ser-studio``)."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    entry()
