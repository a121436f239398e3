"""Shared storage as an fsspec URL (``s3://…``, ``gs://…``, ``abfs://…``): a local mirror per machine.

The night's steps read and write ordinary files (Parquet shards, pickles, JSON)
with local paths, and several libraries need real files (SQLite, Arrow's memory
maps, ``os.replace`` for atomic writes). Rather than thread a file-system object
through every reader, a run whose landing or output directory is a URL works on
a *mirror*: a local folder that stands for the URL, at the same path on every
machine (``WASTETRACK_SCRATCH``/<hash of the URL>). Each Airflow task pulls the
files it needs from the URL before it runs and pushes what it wrote after, so
tasks on different machines hand each other files through object storage alone.
Because every machine mirrors a URL at the same local path, the paths written
into ``plan.json`` mean the same file everywhere.

Files are written once per run (every run has its own work, state and version
directory), so a file whose size matches is already there: a retried task pulls
nothing twice. Credentials and endpoints come from fsspec's own configuration
(for S3: ``AWS_*`` variables, ``AWS_ENDPOINT_URL`` for a private endpoint such
as MinIO), never from code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: local root of every mirror on this machine (the same path on every worker of a deployment)
SCRATCH_ENV = "WASTETRACK_SCRATCH"


def is_remote(location: str | os.PathLike | None) -> bool:
    """True for an fsspec URL other than a local file (``file://`` and plain paths are local)."""
    text = str(location or "")
    if "://" not in text:
        return False
    return text.split("://", 1)[0].lower() not in ("file", "local")


def local_path(location: str | os.PathLike) -> str:
    """A ``file://`` URL as a plain path; anything else unchanged."""
    text = str(location)
    return text[len("file://"):] if text.lower().startswith("file://") else text


def scratch_root() -> Path:
    return Path(os.environ.get(SCRATCH_ENV) or Path(tempfile.gettempdir()) / "wastetrack-scratch")


@dataclass(frozen=True)
class Mirror:
    """One URL and the local folder that stands for it on this machine."""

    url: str
    local: Path

    @classmethod
    def of(cls, url: str) -> Mirror:
        url = url.rstrip("/")
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
        return cls(url, scratch_root() / digest)

    def filesystem(self) -> tuple[Any, str]:
        """(fsspec file system, root path on it) of the URL."""
        from fsspec.core import url_to_fs

        return url_to_fs(self.url)

    def covers(self, path: str | os.PathLike) -> bool:
        return Path(path).resolve().is_relative_to(self.local.resolve())

    def rel(self, path: str | os.PathLike) -> str:
        return Path(path).resolve().relative_to(self.local.resolve()).as_posix()

    def pull(self, path: str | os.PathLike, exclude: Sequence[str] = ()) -> int:
        """Copy the remote file or folder that stands for local ``path`` (minus ``exclude``: names of
        sub-folders of it) here; files already here with the same size are kept. Returns files fetched."""
        fs, root = self.filesystem()
        rel = self.rel(path)
        remote = f"{root}/{rel}".rstrip("/") if rel != "." else root
        if not fs.exists(remote):
            return 0
        listing = {remote: fs.info(remote)} if fs.isfile(remote) else fs.find(remote, detail=True)
        skip = tuple(f"{remote}/{e.strip('/')}/" for e in exclude)
        fetched = 0
        for name, info in sorted(listing.items()):
            if info.get("type") == "directory" or name.startswith(skip):
                continue
            target = self.local / name[len(root):].lstrip("/")
            size = info.get("size")
            if target.is_file() and (size is None or target.stat().st_size == size):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.pull")
            fs.get_file(name, str(tmp))
            tmp.replace(target)
            fetched += 1
        return fetched

    def push(self, path: str | os.PathLike) -> int:
        """Copy local ``path`` (a file or a folder, symbolic links followed) to the URL; files already there
        with the same size are skipped. Returns files sent."""
        fs, root = self.filesystem()
        path = Path(path)
        base = f"{root}/{self.rel(path)}".rstrip("/")
        files = [path] if path.is_file() else sorted(p for p in _walk(path) if p.is_file())
        if not files:
            return 0
        try:
            there = {k.rstrip("/"): v for k, v in fs.find(base, detail=True).items()} if fs.exists(base) else {}
        except FileNotFoundError:
            there = {}
        sent = 0
        for f in files:
            if f.name.endswith(".pull") or f.name.endswith(".tmp"):
                continue  # half-written files of this machine
            name = base if f == path else f"{base}/{f.relative_to(path).as_posix()}"
            info = there.get(name)
            if info is not None and info.get("size") == f.stat().st_size:
                continue
            fs.makedirs(name.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(f), name)
            sent += 1
        return sent

    def replace_folder(self, folder: Path, rel: str, last: str) -> None:
        """Make the remote folder ``rel`` a copy of local ``folder``: what was there goes first (nothing stale
        stays beside the new files), the file named ``last`` is written after all the others (readers take
        it as the mark of a complete folder: object stores have no atomic rename)."""
        fs, root = self.filesystem()
        if fs.exists(f"{root}/{rel}"):
            fs.rm(f"{root}/{rel}", recursive=True)
        files = sorted(p for p in _walk(folder) if p.is_file())
        for f in sorted(files, key=lambda p: p.name == last):  # stable: ``last`` moves to the end
            name = f"{root}/{rel}/{f.relative_to(folder).as_posix()}"
            fs.makedirs(name.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(f), name)

    def remove(self, path: str | os.PathLike) -> None:
        """Delete the remote file or folder that stands for local ``path`` (the run's scratch, once done)."""
        fs, root = self.filesystem()
        remote = f"{root}/{self.rel(path)}"
        if fs.exists(remote):
            fs.rm(remote, recursive=True)


def _walk(folder: Path) -> Iterable[Path]:
    for dirpath, _dirs, names in os.walk(folder, followlinks=True):
        for n in names:
            yield Path(dirpath) / n


class Mirrors:
    """The mirrors of one deployment (landing, output, work root): pull/push by local path."""

    def __init__(self, mirrors: Iterable[Mirror]) -> None:
        self.items = [m for m in mirrors]

    def __bool__(self) -> bool:
        return bool(self.items)

    def owner_of(self, path: str | os.PathLike) -> Mirror | None:
        """The mirror whose local folder holds ``path`` (None: a plain path)."""
        # the longest local root that holds the path (a work root may sit inside the output mirror)
        owners = [m for m in self.items if m.covers(path)]
        return max(owners, key=lambda m: len(str(m.local))) if owners else None

    def pull(self, *paths: str | os.PathLike, exclude: Sequence[str] = ()) -> int:
        n = 0
        for p in paths:
            m = self.owner_of(p)
            if m is not None:
                n += m.pull(p, exclude)
        if n:
            log.info("pulled %d file(s) from shared storage", n)
        return n

    def push(self, *paths: str | os.PathLike) -> int:
        n = 0
        for p in paths:
            m = self.owner_of(p)
            if m is not None and Path(p).exists():
                n += m.push(p)
        if n:
            log.info("pushed %d file(s) to shared storage", n)
        return n

    def remove(self, *paths: str | os.PathLike) -> None:
        for p in paths:
            m = self.owner_of(p)
            if m is not None:
                m.remove(p)
