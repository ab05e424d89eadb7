"""Cleaning: `make clean` removes what rendering the report wrote, and nothing else.

    python3 -m digits.pipeline.cleaning     # make clean: needs only Python, no environment

Each rendering records the files it wrote under report/ (new ones, and those it
changed) in report/.rendered.json, with their size and modification time, and a
digest of the list. `make clean` removes the recorded files that are still as
rendering left them, then the folders left empty, and names every file it kept
in the folders rendering writes to: a file of your own there, or one you changed
since, stays. Standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from digits.util.display import shown
from digits.util.files import read_checked_json, write_checked_json
from digits.util.paths import project_root

MANIFEST = ".rendered.json"
FORMAT = 1
# The folders only rendering writes to: what is left in them after cleaning is listed as kept.
OUTPUT_FOLDERS = ("_book", "notebooks", ".quarto", "index_files")
MAX_LISTED = 20


def snapshot(report_dir: Path) -> dict[str, list[int]]:
    """Size and modification time of every file (or link) under report_dir but the manifest, by relative path."""
    found = {}
    for folder, _, names in os.walk(report_dir):
        for name in names:
            path = Path(folder, name)
            try:
                status = path.lstat()
            except OSError:  # removed meanwhile
                continue
            found[path.relative_to(report_dir).as_posix()] = [status.st_size, status.st_mtime_ns]
    found.pop(MANIFEST, None)
    return found


def recorded(report_dir: Path) -> dict[str, list[int]]:
    """The files rendering wrote, as the manifest lists them; none (and one line) when it is damaged."""
    try:
        listed = read_checked_json(report_dir / MANIFEST, FORMAT)
        if listed is not None and not (isinstance(listed, dict) and all(
                isinstance(key, list) and len(key) == 2 for key in listed.values())):
            raise ValueError("damaged")
    except ValueError:
        print(f"{shown(report_dir / MANIFEST)}: damaged: it no longer says what rendering wrote", flush=True)
        listed = None
    return listed or {}


@contextmanager
def recording(report_dir: Path) -> Iterator[None]:
    """Add the files the block writes under report_dir (new or changed) to the manifest, even when it fails."""
    before = snapshot(report_dir)
    try:
        yield
    finally:
        after = snapshot(report_dir)
        written = {name: key for name, key in after.items() if before.get(name) != key}
        if written:
            still = {name: key for name, key in recorded(report_dir).items() if after.get(name) == key}
            write_checked_json(report_dir / MANIFEST, FORMAT, still | written)


def remove_emptied_folders(report_dir: Path, removed: list[str]) -> None:
    """Remove the folders that removing these files left empty (deepest first); report_dir itself stays."""
    folders = {parent for name in removed for parent in (report_dir / name).parents if report_dir in parent.parents}
    for folder in sorted(folders, key=lambda path: -len(path.parts)):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def clean(report_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Remove the files rendering wrote that are as it left them and the folders left empty; return the removed
    files and the kept ones (in the output folders, or recorded but changed since) with why each was kept."""
    listed, now = recorded(report_dir), snapshot(report_dir)
    removed, kept = [], {}
    for name, key in sorted(listed.items()):
        if name not in now:
            continue
        if now[name] != key:
            kept[name] = "changed since rendering wrote it"
            continue
        (report_dir / name).unlink()
        removed.append(name)
    (report_dir / MANIFEST).unlink(missing_ok=True)
    remove_emptied_folders(report_dir, removed)
    for name in snapshot(report_dir):
        if name.split("/")[0] in OUTPUT_FOLDERS and name not in kept:
            kept[name] = "not written by rendering"
    return removed, kept


def main() -> int:
    """Clean the project's report/ and say what was removed and what was kept."""
    report_dir = project_root() / "report"
    where = shown(report_dir)
    try:
        removed, kept = clean(report_dir)
    except OSError as error:
        print(f"error: {shown(error.filename or report_dir)}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"removed {len(removed)} file(s) that rendering wrote in {where}/ (data, runs and the environment stay)")
    for name, why in sorted(kept.items())[:MAX_LISTED]:
        print(f"kept {where}/{name}: {why}")
    if len(kept) > MAX_LISTED:
        print(f"kept {len(kept) - MAX_LISTED} more file(s) in {where}/ that rendering did not write")
    return 0


if __name__ == "__main__":
    sys.exit(main())
