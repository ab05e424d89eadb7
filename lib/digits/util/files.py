"""Files: atomic writes, leftovers of killed writes, content digests remembered by stat, and the pipeline's lock."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from digits.util.display import shown

if TYPE_CHECKING:
    import pandas

PARTIAL = re.compile(r"^\..+\.partial-(\d+)(\.[\w]+)?$")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    # Same folder, so the rename is atomic; same suffix, so writers that check it (Keras) accept it.
    temporary = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_frame_atomic(frame: pandas.DataFrame, path: str | Path) -> None:
    """Write a DataFrame as CSV (no index) atomically."""
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)


def _process_alive(pid: int) -> bool:
    """True when a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete the temporary files that killed writers left in `folder` (their process is gone)."""
    removed = []
    if folder.is_dir() and os.access(folder, os.W_OK):
        for path in folder.iterdir():
            match = PARTIAL.match(path.name)
            if match and path.is_file() and not _process_alive(int(match.group(1))):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


# --- Records checked against a digest written with them ---------------------------------------------------


def _json_digest(content: object) -> str:
    """SHA-256 of a JSON value, written canonically."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_checked_json(path: Path, format_version: int, content: object) -> None:
    """Write a record as JSON atomically, with its format and the digest of its content."""
    record = {"format": format_version, "digest": _json_digest(content), "content": content}
    write_text_atomic(path, json.dumps(record, separators=(",", ":")))


def read_checked_json(path: Path, format_version: int) -> object | None:
    """The content of a record write_checked_json wrote: None for a missing file or one of another format version;
    ValueError when it is damaged (not JSON, the wrong shape, or a content that does not match its digest)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
        raise ValueError("damaged") from error
    if isinstance(record, dict) and isinstance(record.get("format"), int) and record["format"] != format_version:
        return None  # written by an older (or newer) version of the project: not damage, just not ours to read
    if not isinstance(record, dict) or record.get("digest") != _json_digest(record.get("content")):
        raise ValueError("damaged")
    return record["content"]


class StatCache:
    """What is known of files (their SHA-256, a check they passed), remembered by their size, times and inode.

    A file is read again only when `stat` says it may have changed (size, modification or change time,
    inode), as Make and git decide: a step with nothing to do costs a few `stat` calls, not reading the
    data again. The change time is in the key because no tool can set it back. The file is written with a
    digest of its entries and checked against it (and for its shape) when read: a damaged one is named and
    started afresh. Losing the cache file costs time, never a wrong answer; without a file (`path` None)
    nothing is remembered.
    """

    # Changes whenever what is remembered changes meaning: a cache of another format is dropped.
    FORMAT = 2

    def __init__(self, path: Path | None = None):
        self.path = path
        self.entries: dict[str, dict] = {}
        self.changed = False
        if path is not None:
            self.entries = self._load(path)

    @staticmethod
    def _load(path: Path) -> dict[str, dict]:
        """The entries of the cache file; none (and one line naming it) when it is damaged."""
        try:
            entries = read_checked_json(path, StatCache.FORMAT)
            if entries is not None and not _valid_entries(entries):
                raise ValueError("damaged")
        except ValueError:
            print(f"{shown(path)}: damaged: starting afresh", flush=True)
            entries = None
        return entries or {}

    @staticmethod
    def _stat_key(path: Path) -> list[int] | None:
        try:
            status = os.stat(path)
        except OSError:
            return None
        return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]

    def _entry(self, path: Path) -> dict | None:
        """The remembered facts of an unchanged file (dropped when it changed); None for a missing file."""
        key, name = self._stat_key(path), str(Path(path).absolute())
        if key is None:
            return None
        entry = self.entries.get(name)
        if not isinstance(entry, dict) or entry.get("stat") != key:
            entry = self.entries[name] = {"stat": key}
            self.changed = True
        return entry

    def digest(self, path: Path) -> str:
        """SHA-256 of the file's contents then a NUL byte ("missing" for no file), read only when it changed.

        The NUL byte is how the project has always hashed a file: data tags in run names come from it.
        """
        entry = self._entry(path)
        if entry is None:
            return "missing"
        if "sha256" not in entry:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
            entry["sha256"] = digest.hexdigest()
            self.changed = True
        return entry["sha256"]

    def passed(self, path: Path, check: str) -> object | None:
        """What the named check returned when the file, unchanged since, last passed it; None if it has not."""
        entry = self._entry(path)
        return None if entry is None else entry.get("passed", {}).get(check)

    def remember(self, path: Path, check: str, result: object = True) -> None:
        """Record that the file passed the named check (with what it returned)."""
        entry = self._entry(path)
        if entry is not None:
            entry.setdefault("passed", {})[check] = result
            self.changed = True

    def save(self) -> None:
        """Write what changed to the cache file, atomically (a failure to write only costs time later)."""
        if self.path is not None and self.changed:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_checked_json(self.path, self.FORMAT, self.entries)
                self.changed = False
            except OSError:
                pass


def _valid_entries(entries: object) -> bool:
    """True when the cache's entries have the shape StatCache writes: by path, a stat key of four whole numbers,
    perhaps a SHA-256 and the checks passed."""
    def valid(entry: object) -> bool:
        stat = entry.get("stat") if isinstance(entry, dict) else None
        return (isinstance(stat, list) and len(stat) == 4 and all(type(number) is int for number in stat)
                and re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", "0" * 64))) is not None
                and isinstance(entry.get("passed", {}), dict))

    return isinstance(entries, dict) and all(isinstance(name, str) and valid(entry) for name, entry in entries.items())


# The process's cache: none unless a command asks for one (the pipeline keeps it in the project).
CACHE = StatCache()


def use_cache(path: Path) -> StatCache:
    """Remember what is learned of files in `path` for the rest of this process (and later ones)."""
    global CACHE
    CACHE = StatCache(path)
    return CACHE


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's contents and a NUL byte ("missing" when there is no file)."""
    return CACHE.digest(Path(path))


def digest_of(*paths: Path) -> str:
    """One SHA-256 of several files' contents, in order."""
    return hashlib.sha256("\n".join(sha256_of(path) for path in paths).encode()).hexdigest()


def held_by_another(path: Path) -> bool:
    """True while another process holds the lock on `path` (it is not taken here)."""
    if not path.is_file():
        return False
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


@contextmanager
def exclusive_lock(path: Path, holder: str = "another pipeline run") -> Iterator[None]:
    """Hold an exclusive lock on `path`; while another process holds it, say so once and wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            print(f"waiting: {holder} (pid {owner}) is working", flush=True)
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            print(f"it finished after {time.monotonic() - started:.0f} s; going on", flush=True)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
