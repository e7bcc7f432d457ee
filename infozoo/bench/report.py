"""Render every registered table from the results store to markdown, CSV and PNG plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from infozoo.bench.runner import Table, TableSpec
from infozoo.bench.store import Store, git_revision
from infozoo.core.files import atomic_write_text


def to_markdown(table: Table) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    out = [f"### {table.title}", "", line(table.header), line(["---"] * len(table.header))]
    out += [line(r) for r in table.rows]
    if table.notes:
        out += [""] + [f"- {n}" for n in table.notes]
    return "\n".join(out) + "\n"


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return buf.getvalue()


def machine_description() -> str:
    import os
    import platform

    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {dev}; "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def write_report(specs: list[TableSpec], store: Store, out: str | Path,
                 profile: str | None = None) -> list[Path]:
    """Write ``<table>.md``, ``<table>_<k>.csv`` and plots for each spec into ``out``; also a
    combined ``README.md``. Returns the files written."""
    from infozoo import __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sections = [f"# infozoo benchmark results\n\ninfozoo {__version__}, git {git_revision()}; "
                f"rendered on {machine_description()} from {store.path}"
                + (f" (profile {profile})" if profile else "") + ".\n"
                "Train times and throughput are those of the machine each row ran on.\n"]
    for spec in specs:
        records = store.records(spec.name, profile)
        if not records:
            continue
        tables = spec.render(records)
        md = "".join(to_markdown(t) + "\n" for t in tables)
        path = out / f"{spec.name}.md"
        atomic_write_text(path, f"## {spec.name}\n\n{spec.description}\n\n{md}")
        written.append(path)
        sections.append(f"## {spec.name}\n\n{spec.description}\n\n{md}")
        for k, t in enumerate(tables):
            p = out / f"{spec.name}_{k}.csv"
            atomic_write_text(p, to_csv(t))
            written.append(p)
        if spec.plots is not None:
            written += spec.plots(records, out)
    index = out / "README.md"
    atomic_write_text(index, "\n".join(sections))
    written.append(index)
    return written
