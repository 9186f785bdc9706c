"""What every benchmark script shares: the machine line, the date, package versions, and writing
its own section of docs/benchmarks.md (the section headed by its ``## `` title; the others are left as they are).

The scripts are run as files (``.venv/bin/python benchmarks/x.py``), so their folder is on
``sys.path`` and ``from report import ...`` finds this module.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
from pathlib import Path


def machine() -> str:
    """CPUs, memory, CPU model and OS of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")).split()[1])
        memory = f", {kb / 2**20:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} CPUs (os.cpu_count){memory}, {cpu}, {platform.system()} {platform.release()}"


def package_version(name: str) -> str:
    """The installed version of the distribution ``name``, or "not installed"."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def utc_now() -> str:
    return f"{datetime.datetime.now(datetime.timezone.utc):%a %b %d %H:%M:%S UTC %Y}"


def write_section(path: Path, title: str, text: str) -> None:
    """Replace the section headed ``title`` (a ``## `` line) in ``path``, up to the next ``## ``
    heading, with ``text``; append it when absent. Every other section is left as it is.
    """
    existing = path.read_text() if path.exists() else (
        "# Benchmarks\n\nMeasured numbers of the project's benchmarks; each section is written by the script it names.\n")
    pattern = re.compile(rf"^{re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    body = text.rstrip("\n") + "\n"
    if pattern.search(existing):
        updated = pattern.sub(lambda _: body + "\n", existing, count=1)
    else:
        updated = existing.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated.rstrip("\n") + "\n")


def markdown_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A rich table on stdout (plain text when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    Console(width=max(160, Console().width)).print(table)
