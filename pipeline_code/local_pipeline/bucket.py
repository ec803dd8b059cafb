"""The local stand-in for S3: `s3://<bucket>/<key>` is the file `<root>/<bucket>/<key>`.

Objects persist across runs, as in S3: the execution id in the definition's output URIs keeps
runs apart, a cache hit reads an earlier execution's outputs, and a registered package's model
stays where the registry points. Steps only ever get copies (a container's input is a
download), so no step can change an object another step reads.

Prefix semantics follow S3: `s3://b/a/train` names every object whose key starts with
`a/train`; a download puts each at its key minus the prefix under the destination (an object
whose key is the prefix itself keeps its file name, and so does one whose name the prefix only
begins, `a/train` matching `a/train-1.csv`: SageMaker's jobs name it `train-1.csv`, not the SDK
local mode's `-1.csv`, aws/sagemaker-python-sdk#3612).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class S3UriError(ValueError):
    """Not an S3 URI the local bucket can hold; the message says why."""


def split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); S3UriError for anything else."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise S3UriError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket):
        raise S3UriError(f"{uri}: {bucket!r} is not a valid bucket name")
    parts = key.split("/")
    if any(part in (".", "..") for part in parts) or "//" in key or key.startswith("/"):
        raise S3UriError(f"{uri}: the key has an empty, '.' or '..' segment")
    return bucket, key


def join_uri(uri: str, relative: str) -> str:
    return uri.rstrip("/") + "/" + relative if relative else uri


@dataclass(frozen=True)
class LocalS3:
    """Buckets as folders under `root`."""

    root: Path

    def path(self, uri: str) -> Path:
        """Where the object `uri` lives (it may not exist)."""
        bucket, key = split_uri(uri)
        return self.root / bucket / Path(*PurePosixPath(key).parts) if key else self.root / bucket

    def objects(self, uri: str) -> list[tuple[str, Path]]:
        """(relative path, file) of every object under the prefix `uri`, sorted by key."""
        bucket, prefix = split_uri(uri)
        base = self.root / bucket
        parent_key, _, stem = prefix.rpartition("/")
        parent = base / parent_key if parent_key else base
        if not parent.is_dir():
            return []
        files: list[Path] = []
        for entry in parent.iterdir():
            if not entry.name.startswith(stem):
                continue
            if entry.is_file():
                files.append(entry)
            elif entry.is_dir():
                files += [f for f in entry.rglob("*") if f.is_file()]
        found = []
        for file in sorted(files, key=lambda f: f.relative_to(base).as_posix()):
            key = file.relative_to(base).as_posix()
            rest = key[len(prefix) :]
            # the object itself, or a file whose name the prefix begins: its own name
            partial = bool(rest) and not rest.startswith("/") and "/" not in rest
            relative = PurePosixPath(key).name if not rest or partial else rest.lstrip("/")
            found.append((relative, file))
        return found

    def object_exists(self, uri: str) -> bool:
        return self.path(uri).is_file()

    def download(self, uri: str, destination: Path, data_type: str = "S3Prefix") -> int:
        """Copy the object (S3Object) or every object under the prefix (S3Prefix) into
        `destination`; the number of files. FileNotFoundError when there is none."""
        destination.mkdir(parents=True, exist_ok=True)
        if data_type == "S3Object":
            source = self.path(uri)
            if not source.is_file():
                raise FileNotFoundError(uri)
            shutil.copyfile(source, destination / source.name)
            return 1
        found = self.objects(uri)
        if not found:
            raise FileNotFoundError(uri)
        for relative, source in found:
            target = destination / Path(*PurePosixPath(relative).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return len(found)

    def upload_dir(self, source: Path, uri: str) -> int:
        """Copy every file under `source` to `uri/<relative path>`; the number of files."""
        count = 0
        for file in sorted(source.rglob("*")):
            if file.is_file():
                self.put_file(file, join_uri(uri, file.relative_to(source).as_posix()))
                count += 1
        return count

    def put_file(self, source: Path, uri: str) -> None:
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    def put_bytes(self, data: bytes, uri: str) -> None:
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def put_tree(self, directory: Path, uri: str) -> None:
        """Copy a whole folder (the generated step code) to `uri`, replacing what was there."""
        target = self.path(uri)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(directory, target)
