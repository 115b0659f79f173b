"""`cfp2p decode --extract DIR`: the data blocks of a capture written out for the analyst.

Every data block's deciphered bytes go to DIR/<sha256>.bin (content-addressed: a block seen
twice, in this capture or an earlier one, is one file) and every message that carries one
adds a line to DIR/index.jsonl (when, who sent it to whom, its flags, the block's data_flags,
length and sha256, whether the listener port matched).

A run is all or nothing, so that a DIR never holds half a capture's evidence: DIR is checked
(and created when missing) before anything is decoded, blocks are written into a staging
folder inside DIR, each as a temporary file renamed into place, and commit() moves them into
DIR and replaces index.jsonl by a copy with the new lines appended (one rename). abort(), on
a bad capture or an interrupt, removes the staging folder and a DIR the run created. Memory
stays bounded: blocks are never held beyond the message that carries them, and the dedupe
asks the file system, not a table.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .triage import Record

INDEX = "index.jsonl"
_STAGING_PREFIX = ".cfp2p-extract-"
_COPY_CHUNK = 1 << 20


class ExtractError(ValueError):
    """DIR cannot take the extracted blocks; str(err) names it and says why."""


class Extractor:
    """Writes one capture's data blocks and index lines into a folder, all or nothing.

    Constructing it checks the folder (a clear ExtractError naming it when it cannot be
    written, and nothing left behind); add() stages one message's block; commit() or abort()
    ends the run.
    """

    def __init__(self, folder: str | Path, capture: str | Path):
        self.folder = Path(folder)
        self.capture = str(capture)
        self.lines = 0  # index lines staged
        self.new_files = 0  # block files not already in the folder
        self._created: Path | None = None  # the topmost folder this run made
        self._staging: Path | None = None
        self._index = None
        self._prepare()

    def _fail(self, why: str) -> ExtractError:
        return ExtractError(f"{self.folder}: cannot extract data blocks there: {why}")

    def _prepare(self) -> None:
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise self._fail("it exists and is not a directory")
        index = folder / INDEX
        if index.exists() and not index.is_file():
            raise self._fail(f"{INDEX} exists and is not a regular file")
        if not folder.exists():
            missing = [p for p in (folder, *folder.parents) if not p.exists()]
            try:
                folder.mkdir(parents=True)
            except OSError as err:
                raise self._fail(err.strerror or str(err)) from None
            self._created = missing[-1]
        try:
            self._staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=folder))
            self._index = open(self._staging / INDEX, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as err:
            self.abort()
            raise self._fail(err.strerror or str(err)) from None

    def add(self, record: Record) -> None:
        """Stage one message's data block (once per content) and its index line."""
        try:
            self._add(record)
        except OSError as err:  # e.g. the disk filled up
            raise self._fail(err.strerror or str(err)) from None

    def _add(self, record: Record) -> None:
        assert self._staging is not None and self._index is not None, "run ended"
        msg, sha = record.message, record.sha256
        assert msg.data is not None and msg.data_flags is not None and sha, "no data block"
        name = f"{sha}.bin"
        if not (self.folder / name).exists() and not (self._staging / name).exists():
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self._staging)
            with os.fdopen(fd, "wb") as out:
                out.write(msg.data)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the evidence from other readers
            os.replace(tmp, self._staging / name)
            self.new_files += 1
        row = record.to_json()
        line = {
            "time": row["time"],
            "src": row["src"],
            "dst": row["dst"],
            "proto": record.proto,
            "flags": row["flags"],
            "data_flags": row["data_flags"],
            "length": len(msg.data),
            "sha256": sha,
            "port_match": row["port_match"],
            "capture": self.capture,
        }
        self._index.write(json.dumps(line) + "\n")
        self.lines += 1

    def commit(self) -> None:
        """Move the staged blocks into the folder, then append the staged lines to
        index.jsonl by replacing it with a longer copy: a reader sees the old index or the
        new one, and every block the index names is already there."""
        try:
            self._commit()
        except OSError as err:
            raise self._fail(err.strerror or str(err)) from None

    def _commit(self) -> None:
        assert self._staging is not None and self._index is not None, "run ended"
        self._index.close()
        staged_index = self._staging / INDEX
        with os.scandir(self._staging) as entries:
            for entry in entries:
                if entry.name.endswith(".bin"):
                    os.replace(entry.path, self.folder / entry.name)
        if self.lines:
            index = self.folder / INDEX
            fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=self._staging)
            with os.fdopen(fd, "wb") as out:
                if index.exists():
                    with open(index, "rb") as old:
                        shutil.copyfileobj(old, out, _COPY_CHUNK)
                with open(staged_index, "rb") as new:
                    shutil.copyfileobj(new, out, _COPY_CHUNK)
            os.chmod(tmp, 0o644)
            os.replace(tmp, index)
        shutil.rmtree(self._staging)
        self._staging = self._index = None

    def abort(self) -> None:
        """Leave the folder as it was before the run: drop the staging folder, and the
        folders the run created."""
        if self._index is not None:
            self._index.close()
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
        if self._created:
            shutil.rmtree(self._created, ignore_errors=True)
        self._staging = self._index = None
        self._created = None
