"""Files that ship with SER Studio: the default model, its card and its training recipe."""
