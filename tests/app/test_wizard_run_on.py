"""The wizard's "Run on" row: this computer or a Ray cluster at an address, its connection
check (a child process, so the GUI thread never waits on a cluster) and the address reaching
run.json's "run" section."""
from __future__ import annotations

import socket

import pytest

from ser_studio.app.wizard.run_on import CLUSTER, HERE, RunOnRow
from ser_studio.app.wizard.wizard import TrainingWizard


@pytest.fixture
def row(qtbot):
    widget = RunOnRow()
    qtbot.addWidget(widget)
    return widget


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_this_computer_has_no_address_and_no_check(row):
    row.address_edit.setText("10.0.0.7:6379")
    assert row.combo.currentText() == HERE and row.address() is None
    assert not row.check_button.isEnabled() and not row.address_edit.isEnabled()


def test_an_unreachable_cluster_is_named_by_the_check(qtbot, row):
    address = f"127.0.0.1:{_closed_port()}"
    row.combo.setCurrentText(CLUSTER)
    row.address_edit.setText(address)
    with qtbot.waitSignal(row.checked, timeout=60000) as blocker:
        row.check_button.click()
        assert not row.check_button.isEnabled()  # one check at a time, GUI not blocked
    assert blocker.args == [False]
    assert f"Ray cluster at {address} is not reachable" in row.result_label.text()
    assert row.check_button.isEnabled()


def test_a_local_runtime_check_shows_its_node_and_cpus(qtbot, row):
    row.set_address("local")
    assert row.combo.currentText() == CLUSTER and row.address() == "local"
    with qtbot.waitSignal(row.checked, timeout=120000) as blocker:
        row.check()
    assert blocker.args == [True]
    assert row.result_label.text().startswith("local: 1 node, ")
    assert " CPUs (" in row.result_label.text()


def test_the_address_reaches_run_json_and_comes_back_from_it(qtbot, tmp_path):
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    page = wizard.setup_page
    assert "ray" not in page.run_options()
    page.run_on.set_address("ray://10.0.0.7:10001")
    assert page.run_options()["ray"] == "ray://10.0.0.7:10001"
    wizard.corpus_page.key = lambda: ([str(tmp_path)], "", ())
    assert wizard.run_sections()["run"]["ray"] == "ray://10.0.0.7:10001"
    page.show_configs({"run": {"final": True, "max_folds": None, "ray": "auto"}})
    assert page.run_on.address() == "auto"
    page.show_configs({"run": {"final": True, "max_folds": None}})
    assert page.run_on.address() is None and page.run_on.combo.currentText() == HERE
