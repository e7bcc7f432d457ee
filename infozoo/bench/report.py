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


REPORT_TITLE = "# infozoo benchmark results"
PROFILE_ORDER = ("full", "quick")


def check_report_destination(out: str | Path, force: bool = False) -> None:
    """A ``ValueError`` when writing a report into ``out`` could overwrite files infozoo did not write:
    ``out`` is a file, or holds a ``README.md`` that is not a report index (unless ``force``), or
    cannot be written."""
    from infozoo.core.files import check_writable_dir

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"report folder {str(out)!r} is a file")
    index = out / "README.md"
    if index.is_file() and not force:
        with open(index, errors="replace") as f:
            head = f.readline().rstrip("\n")
        if head != REPORT_TITLE:
            raise ValueError(f"{str(index)!r} is not a report written by infozoo and would be overwritten; "
                             "pass another --out folder (or --force to overwrite it)")
    check_writable_dir(out, "report folder")


def write_report(specs: list[TableSpec], store: Store, out: str | Path, profile: str | None = None,
                 force: bool = False) -> list[Path]:
    """Write every spec's tables into ``out/<profile>/``: ``<table>.md``, ``<table>_<k>.csv`` and its
    plots, and an index ``out/README.md`` with every table. Returns the files written.

    Profiles are never mixed: without ``profile`` each profile in the store gets its own folder and
    its own sections of the index (full first). Rows computed on another content of a built-in
    setting (the name's definition changed since) are left out and counted in a note.
    """
    from infozoo import __version__
    from infozoo.registry import named_setting_id

    check_report_destination(out, force)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    present = {r.profile for r in store.records()}
    profiles = [profile] if profile else sorted(present, key=lambda p: (PROFILE_ORDER + (p,)).index(p))
    sections = [f"{REPORT_TITLE}\n\ninfozoo {__version__}, git {git_revision()}; rendered on "
                f"{machine_description()} from {store.path}; profiles: {', '.join(profiles) or 'none'} "
                "(each in its own folder and sections, never averaged together).\n"
                "Train times and throughput are those of the machine each row ran on.\n"]
    for prof in profiles:
        folder = out / prof
        for spec in specs:
            records = store.records(spec.name, prof)
            ids = {name: named_setting_id(name) for name in {r.setting for r in records}}
            current = [r for r in records if r.setting_id in ("", ids[r.setting])]
            if not current:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            tables = spec.render(current)
            if len(current) < len(records):
                tables[0].notes.append(f"{len(records) - len(current)} stored row(s) computed on an earlier "
                                       "definition of a setting of the same name are not shown")
            md = "".join(to_markdown(t) + "\n" for t in tables)
            head = f"## {spec.name} ({prof} profile)\n\n{spec.description}\n\n"
            path = folder / f"{spec.name}.md"
            atomic_write_text(path, head + md)
            written.append(path)
            sections.append(head + md)
            for k, t in enumerate(tables):
                p = folder / f"{spec.name}_{k}.csv"
                atomic_write_text(p, to_csv(t))
                written.append(p)
            if spec.plots is not None:
                written += spec.plots(current, folder)
    index = out / "README.md"
    atomic_write_text(index, "\n".join(sections))
    written.append(index)
    return written
