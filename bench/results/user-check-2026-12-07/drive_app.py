"""Start the real app window under Xvfb on the virtual microphone, click Start listening, play
the voice stand-in into the microphone, screenshot the window."""
import subprocess, sys, time, os
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication
app = QApplication(sys.argv)
from ser_studio.app.shell.theme import apply_theme
from ser_studio.app.shell.main_window import MainWindow
from ser_studio.app.shell.launch import open_history
apply_theme(app)
history, _ = open_history("/tmp/user/history.sqlite")
w = MainWindow(model_path=None, history=history)
w.resize(1280, 860); w.show()
clip = sys.argv[1]; out = sys.argv[2]
state = {}
def start():
    w.controls.listen.click()
    state["player"] = subprocess.Popen(["paplay", "--device=vmic", clip])
def shot():
    w.grab().save(out)
    print("results", w.live_panel.headline.segment.text() if hasattr(w.live_panel, "headline") else "")
    state["player"].wait(); w.close(); QTimer.singleShot(3000, app.quit)
QTimer.singleShot(8000, start)
QTimer.singleShot(8000 + 27000, shot)
app.exec_()
