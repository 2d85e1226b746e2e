"""Files the desktop app ships with: the stylesheet and the icons."""
