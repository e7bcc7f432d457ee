"""A tiny benchmark table for the store's fault tests: ``count`` tasks that each sleep a little.

``launch(args)`` runs ``infozoo`` in a subprocess with this table registered as ``tiny``; a task
touches ``$INFOZOO_TEST_MARKS/<setting>`` when it starts, so a test knows when work is in flight.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from infozoo.bench.runner import Table, TableSpec, Task, pivot

ROOT = Path(__file__).resolve().parents[2]


def tasks(profile: str) -> list[Task]:
    count, sleep = int(os.environ.get("INFOZOO_TEST_TASKS", "8")), float(os.environ.get("INFOZOO_TEST_SLEEP", "0.3"))
    return [Task("tiny", f"s{i}", "sleep", 0, profile, {"sleep": sleep}) for i in range(count)]


def run(task: Task) -> dict:
    marks = os.environ.get("INFOZOO_TEST_MARKS")
    if marks:
        (Path(marks) / task.setting).touch()
    time.sleep(task.params["sleep"])
    return {"value": int(task.setting[1:])}


def render(records) -> list[Table]:
    return [pivot(records, lambda rs: str(rs[0].metrics["value"]), "tiny")]


TABLE = TableSpec("tiny", tasks, "tests.bench.tiny_table:run", render)

LAUNCH = ("import sys; from infozoo import registry; "
          "registry.register('tiny', 'tests.bench.tiny_table:TABLE', kind='table'); "
          "from infozoo.cli import main; sys.exit(main(sys.argv[1:]))")


def launch(args: list[str], marks: Path, tasks: int = 8, sleep: float = 0.3) -> subprocess.Popen:
    """``infozoo ARGS`` with the tiny table, in its own process group (so a test can signal it whole)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INFOZOO_PROGRESS": "0", "INFOZOO_TEST_MARKS": str(marks),
           "INFOZOO_TEST_TASKS": str(tasks), "INFOZOO_TEST_SLEEP": str(sleep)}
    return subprocess.Popen([sys.executable, "-c", LAUNCH, *args], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
