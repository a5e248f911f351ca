"""Reading `dvc queue status` (the table DVC 3 prints) into {experiment: state}."""

from fclf.sweep.dvc_commands import parse_queue_status, parse_worker_count

# Printed by `dvc queue status` (DVC 3.67) in a clone whose worker was killed and restarted.
STATUS = """\
Task     Name                   Created    Status
1604335  identity-li0-fp0.5     05:46 PM   Running
05a9127  identity-li1-fp0.25    05:46 PM   Queued
1b3c550  identity-li0-fp0.25    05:46 PM   Failed
0b348a0  li1                    Nov 30, 2026   Success

Worker status: 1 active, 0 idle
"""


def test_rows_become_names_and_states() -> None:
    assert parse_queue_status(STATUS) == {
        "identity-li0-fp0.5": "Running",
        "identity-li1-fp0.25": "Queued",
        "identity-li0-fp0.25": "Failed",
        "li1": "Success",
    }


def test_an_empty_queue_has_no_rows() -> None:
    empty = "No experiment tasks in the queue.\n\nWorker status: 0 active, 0 idle\n"
    assert parse_queue_status(empty) == {}
    assert parse_queue_status("Task     Name    Created    Status\n") == {}


def test_worker_count_is_active_plus_idle() -> None:
    assert parse_worker_count(STATUS) == 1
    assert parse_worker_count("Worker status: 2 active, 3 idle\n") == 5
    assert parse_worker_count("No experiment tasks in the queue.\n") == 0
