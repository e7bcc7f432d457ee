"""A run function that fails on one method, to test that an interrupted sweep resumes."""

from infozoo.bench.tables.auction import run as real_run


def run(task):
    if task.method == "myerson":
        raise RuntimeError("simulated crash")
    return real_run(task)
