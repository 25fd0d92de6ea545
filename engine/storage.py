"""Distributed Map's storage: the ItemReader sources and the ResultWriter files, over a local folder standing in for S3.

One folder per bucket under ``root``; an object's Key is its path relative to that folder. Readers stream (a
million-line file never sits in memory) and hand out a small cursor after every item, from which a later read resumes
without re-reading what came before. Nothing here touches the database or the runtime: the Map Run code calls it.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from .errors import ITEM_READER_FAILED, RESULT_WRITER_FAILED, StatemillError
from .project import project_settings

ENV_VAR = "STATEMILL_STORAGE"
DEFAULT_ROOT = "statemill-storage"
MAX_ITEMS = 100_000_000  # AWS stops reading past this many items; MaxItems above it means "all"
BATCH_BYTES = 256 * 1024  # the most MaxInputBytesPerBatch may be (AWS's payload limit)
RESULT_FILE_BYTES = 5 * 1024 ** 3  # AWS starts a new SUCCEEDED_n/FAILED_n/PENDING_n file past 5 GB
STATUSES = ("FAILED", "PENDING", "SUCCEEDED")  # the keys of the manifest's ResultFiles, in AWS's order
DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
TEMP_PREFIX = ".statemill-tmp-"  # files being written; listings skip them
_RESOURCE = re.compile(r"^arn:[a-z-]+:states:::s3:(getObject|listObjectsV2|putObject)$")
_CHUNK = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class StorageError(StatemillError):
    """A reader or writer failure, as the Map state fails with it: ``error`` is ``States.ItemReaderFailed`` or
    ``States.ResultWriterFailed``, ``cause`` the message."""

    def __init__(self, error: str, cause: str):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def storage_root(option: str | os.PathLike | None = None) -> Path:
    """The storage folder: ``--storage DIR``, then $STATEMILL_STORAGE, then ``storage`` in ``[tool.statemill]`` of
    the nearest pyproject.toml (relative to that file's folder), then ./statemill-storage."""
    if option:
        return _absolute(Path(option).expanduser())
    if os.environ.get(ENV_VAR):
        return _absolute(Path(os.environ[ENV_VAR]).expanduser())
    settings = project_settings()
    if isinstance(settings.get("storage"), str):
        return Path(settings["_root"]) / Path(settings["storage"]).expanduser()
    return _absolute(Path(DEFAULT_ROOT))


def _absolute(path: Path) -> Path:
    try:
        return path.absolute()
    except OSError:  # the current directory was removed: keep it relative
        return path


class Storage:
    """Local stand-in for S3: one folder per bucket under ``root``; an object's Key is a relative path."""

    def __init__(self, root: str | os.PathLike, *, result_file_bytes: int = RESULT_FILE_BYTES):
        self.root = Path(root)
        self.result_file_bytes = result_file_bytes

    def __repr__(self) -> str:
        return f"Storage({str(self.root)!r})"

    # -- reading
    def items(self, reader: dict, cursor: Any = None) -> Iterator[tuple[Any, Any]]:
        """Stream the items an ItemReader names, from ``cursor`` (None = the beginning) on, as (item, cursor_after)
        pairs; ``items(reader, cursor_after)`` goes on right after that item. ``reader`` has its Parameters (or
        Arguments) evaluated already. The configuration, bucket and key are checked at once: a StorageError is raised
        here, or later while iterating for content that is malformed (located by line or byte offset).

        Resuming is O(1) for JSON, JSONL and CSV (a byte offset; a gzipped MANIFEST file re-inflates up to it) and
        walks the skipped key names only for s3:listObjectsV2 (S3's StartAfter)."""
        if not isinstance(reader, dict):
            raise _reader_error(f"the ItemReader must be an object, not {_kind(reader)}")
        match = _RESOURCE.match(str(reader.get("Resource", "")))
        action = match.group(1) if match else None
        if action not in ("getObject", "listObjectsV2"):
            raise _reader_error(f"unsupported ItemReader Resource {reader.get('Resource')!r}: statemill reads "
                                "arn:aws:states:::s3:getObject and arn:aws:states:::s3:listObjectsV2")
        params = reader.get("Arguments", reader.get("Parameters"))
        if not isinstance(params, dict):
            raise _reader_error("the ItemReader needs Parameters (or Arguments) naming the Bucket")
        config = reader.get("ReaderConfig") or {}
        if not isinstance(config, dict):
            raise _reader_error(f"ReaderConfig must be an object, not {_kind(config)}")
        limit = _max_items(config.get("MaxItems"))
        cursor = _cursor(cursor)
        done = cursor.get("n", 0)
        if action == "listObjectsV2":
            prefix = params.get("Prefix", "")
            if not isinstance(prefix, str):
                raise _reader_error(f"Prefix must be a string, not {_kind(prefix)}")
            _check_key(prefix[:prefix.rfind("/") + 1] or "x", ITEM_READER_FAILED)
            bucket = self._bucket(params.get("Bucket"), ITEM_READER_FAILED)
            transformation = config.get("Transformation", "NONE")
            if transformation == "NONE":
                source = self._listing(bucket, prefix, cursor)
            elif transformation == "LOAD_AND_FLATTEN":
                read = _file_reader(config, ("JSON", "JSONL", "CSV"))
                source = self._flattened(params["Bucket"], bucket, prefix, cursor, read)
            else:
                raise _reader_error(f"ReaderConfig.Transformation {transformation!r} is not NONE or LOAD_AND_FLATTEN")
        elif config.get("InputType") == "MANIFEST":
            if config.get("ManifestType", "S3_INVENTORY") != "S3_INVENTORY":
                raise _reader_error(f"ManifestType {config['ManifestType']!r} is not supported locally: use "
                                    "S3_INVENTORY")
            path = self._object(params.get("Bucket"), params.get("Key"))
            source = self._manifest(path, f"s3://{params['Bucket']}/{params['Key']}", cursor)
        else:
            read = _file_reader(config, ("JSON", "JSONL", "CSV", "MANIFEST"))
            path = self._object(params.get("Bucket"), params.get("Key"))
            source = read(path, f"s3://{params['Bucket']}/{params['Key']}", cursor)
        return _counted(source, done, limit)

    def _listing(self, bucket: Path, prefix: str, cursor: dict) -> Iterator[tuple[Any, dict]]:
        """s3:listObjectsV2 over ``prefix``: every file below it (recursively, as S3 keys are flat), in key order."""
        folder_key = prefix[:prefix.rfind("/") + 1]
        for key, path in _walk(bucket / folder_key, folder_key, prefix, cursor.get("after")):
            try:
                stat = path.stat()
                item = {"Etag": f'"{_md5(path)}"', "Key": key, "LastModified": int(stat.st_mtime),
                        "Size": stat.st_size, "StorageClass": "STANDARD"}
            except OSError as exc:
                raise _reader_error(f"cannot read {path}: {exc.strerror or exc}") from None
            yield item, {"after": key}

    def _flattened(self, name: str, bucket: Path, prefix: str, cursor: dict, read) -> Iterator[tuple[Any, dict]]:
        """listObjectsV2 with LOAD_AND_FLATTEN: the items of every object listed, one object after the other."""
        folder_key = prefix[:prefix.rfind("/") + 1]
        if "key" in cursor:  # finish the object the cursor is in, then list the ones after it
            for item, after in read(bucket / cursor["key"], f"s3://{name}/{cursor['key']}", cursor["inner"]):
                yield item, {"key": cursor["key"], "inner": after}
        for key, path in _walk(bucket / folder_key, folder_key, prefix, cursor.get("key")):
            for item, after in read(path, f"s3://{name}/{key}", {}):
                yield item, {"key": key, "inner": after}

    def _manifest(self, path: Path, where: str, cursor: dict) -> Iterator[tuple[Any, dict]]:
        """An S3 Inventory manifest.json: the rows of the CSV (optionally gzipped) files it lists, as objects keyed
        by its fileSchema, every value a string."""
        try:
            manifest = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise _reader_error(f"{where} is not an S3 Inventory manifest.json: {exc}") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
            raise _reader_error(f"{where} is not an S3 Inventory manifest.json: it has no \"files\" list")
        if str(manifest.get("fileFormat", "CSV")).upper() != "CSV":
            raise _reader_error(f"{where} lists {manifest.get('fileFormat')} inventory files; Step Functions reads "
                                "CSV inventories only")
        schema = [name.strip() for name in str(manifest.get("fileSchema", "")).split(",")]
        if schema == [""]:
            raise _reader_error(f"{where} has no fileSchema naming the inventory's columns")
        bucket = str(manifest.get("destinationBucket") or where[5:].split("/", 1)[0]).rsplit(":", 1)[-1]
        options = {"headers": schema, "delimiter": ",", "first_row": False}
        for index in range(cursor.get("file", 0), len(manifest["files"])):
            entry = manifest["files"][index]
            key = entry.get("key") if isinstance(entry, dict) else None
            data = self._object(bucket, key)
            options["gzipped"] = key.endswith(".gz")
            inner = {k: cursor[k] for k in ("offset", "line") if k in cursor} if index == cursor.get("file", 0) else {}
            for item, after in _csv_file(data, f"s3://{bucket}/{key}", inner, options):
                yield item, dict(after, file=index)

    def _bucket(self, name: Any, error: str) -> Path:
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
                or "\x00" in name:
            raise StorageError(error, f"invalid Bucket {name!r}: a bucket is one folder name under the storage "
                                      f"root {self.root}")
        folder = self.root / name
        if not folder.is_dir():
            raise StorageError(error, f"The specified bucket does not exist: {name!r} (no folder {folder}; create it, "
                                      f"or point statemill at another root with --storage, ${ENV_VAR} or "
                                      "[tool.statemill] storage)")
        return folder

    def _object(self, bucket: Any, key: Any) -> Path:
        folder = self._bucket(bucket, ITEM_READER_FAILED)
        path = folder / _check_key(key, ITEM_READER_FAILED)
        if not path.is_file():
            raise _reader_error(f"The specified key does not exist: {key!r} in bucket {bucket!r} (no file {path})")
        return path

    # -- writing
    def write_results(self, writer: dict, map_run_arn: str, records: Iterable[tuple[str, dict]]) -> dict:
        """AWS's ResultWriter: stream ``records`` ((status, entry) pairs; status SUCCEEDED, FAILED or PENDING; entry
        AWS's per-child-execution record) into ``<Prefix>/<map run id>/<STATUS>_<n>.json`` files, a new one past
        ``result_file_bytes``, then ``manifest.json``. Every file is written under a temporary name and renamed, the
        manifest last, and files a previous attempt left are removed: a crashed and repeated write leaves complete
        files. Returns the ResultWriterDetails ``{"Bucket", "Key"}`` of the manifest."""
        if not isinstance(writer, dict):
            raise _writer_error(f"the ResultWriter must be an object, not {_kind(writer)}")
        match = _RESOURCE.match(str(writer.get("Resource", "")))
        if not match or match.group(1) != "putObject":
            raise _writer_error(f"unsupported ResultWriter Resource {writer.get('Resource')!r}: statemill writes "
                                "with arn:aws:states:::s3:putObject")
        params = writer.get("Arguments", writer.get("Parameters"))
        if not isinstance(params, dict):
            raise _writer_error("the ResultWriter needs Parameters (or Arguments) naming the Bucket")
        prefix = params.get("Prefix", "")
        if not isinstance(prefix, str):
            raise _writer_error(f"Prefix must be a string, not {_kind(prefix)}")
        output_type, transformation = _writer_config(writer.get("WriterConfig"))
        bucket = params.get("Bucket")
        folder_key = f"{prefix}{'/' if prefix and not prefix.endswith('/') else ''}{map_run_arn.rsplit(':', 1)[-1]}"
        folder = self._bucket(bucket, RESULT_WRITER_FAILED) / _check_key(folder_key, RESULT_WRITER_FAILED)
        extension = ".json" if output_type == "JSON" else ".jsonl"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob(TEMP_PREFIX + "*"):
                stale.unlink()
            files = {status: _ResultFiles(folder, folder_key, status, extension, self.result_file_bytes)
                     for status in STATUSES}
            try:
                for status, entry in records:
                    if status not in files:
                        raise _writer_error(f"unknown result status {status!r}: SUCCEEDED, FAILED or PENDING")
                    for value in _transformed(status, entry, transformation):
                        files[status].add(value)
                for result in files.values():
                    result.close()
            except BaseException:
                for result in files.values():
                    result.discard()
                raise
            written = {name for result in files.values() for name in result.commit()}
            for old in folder.iterdir():
                if old.name not in written and re.fullmatch(r"(FAILED|PENDING|SUCCEEDED)_\d+\.jsonl?", old.name):
                    old.unlink()
            manifest = {"DestinationBucket": bucket, "MapRunArn": map_run_arn,
                        "ResultFiles": {status: files[status].listed for status in STATUSES}}
            _write_atomically(folder / "manifest.json", json.dumps(manifest, ensure_ascii=False).encode())
        except OSError as exc:
            raise _writer_error(f"cannot write the results under {folder}: {exc.strerror or exc}") from None
        return {"Bucket": bucket, "Key": f"{folder_key}/manifest.json"}


def batches(pairs: Iterator[tuple[Any, Any]], batcher: dict | None) -> Iterator[tuple[Any, Any]]:
    """AWS's ItemBatcher over (item, cursor) pairs: yields ({"BatchInput"?, "Items": [...]}, the cursor after the
    batch's last item). ``batcher`` has MaxItemsPerBatch / MaxInputBytesPerBatch (their *Path forms resolved) and
    BatchInput evaluated. A batch's size is its JSON text in UTF-8 (the child execution's input), BatchInput included;
    an item too big to fit in a batch on its own fails the read. Without a batcher, each item passes through as is."""
    if not batcher:
        yield from pairs
        return
    max_items = _positive(batcher, "MaxItemsPerBatch")
    max_bytes = _positive(batcher, "MaxInputBytesPerBatch")
    if max_items is None and max_bytes is None:
        raise _reader_error("the ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch (or their Path forms)")
    if max_bytes is not None and max_bytes > BATCH_BYTES:
        raise _reader_error(f"MaxInputBytesPerBatch is {max_bytes}: at most {BATCH_BYTES} (256 KiB)")
    head = {"BatchInput": batcher["BatchInput"]} if "BatchInput" in batcher else {}
    empty = _size(dict(head, Items=[])) if max_bytes else 0
    items: list[Any] = []
    size = empty
    cursor = None
    for index, (item, after) in enumerate(pairs):
        if max_bytes:
            weight = _size(item)
            if empty + weight > max_bytes:
                raise _reader_error(f"item {index} takes {weight} bytes: a batch holding it alone would exceed "
                                    f"MaxInputBytesPerBatch ({max_bytes} bytes with its BatchInput); raise "
                                    "MaxInputBytesPerBatch or make the items smaller")
            if items and size + 1 + weight > max_bytes:
                yield dict(head, Items=items), cursor
                items, size = [], empty
            size += weight + (1 if items else 0)
        items.append(item)
        cursor = after
        if len(items) == max_items:
            yield dict(head, Items=items), cursor
            items, size = [], empty
    if items:
        yield dict(head, Items=items), cursor


# -- readers: each yields (item, cursor fields) from a cursor's fields
def _file_reader(config: dict, kinds: tuple[str, ...]):
    """The reader of one object for ReaderConfig.InputType, its options checked now: read(path, where, cursor)."""
    kind = config.get("InputType")
    if kind not in kinds or kind == "MANIFEST":
        raise _reader_error(f"ReaderConfig.InputType {kind!r} is not supported here: use {', '.join(kinds)}"
                            + (" (PARQUET is not read locally)" if kind == "PARQUET" else ""))
    if kind == "JSONL":
        return _jsonl
    if kind == "JSON":
        pointer = _pointer(config.get("ItemsPointer"))
        return lambda path, where, cursor: _json(path, where, cursor, pointer)
    options = _csv_options(config)
    return lambda path, where, cursor: _csv_file(path, where, cursor, options)


def _counted(source: Iterator[tuple[Any, dict]], done: int, limit: int | None) -> Iterator[tuple[Any, dict]]:
    """Number the items (the cursor carries the count, so MaxItems holds across resumes) and stop at ``limit``."""
    if limit is not None and done >= limit:
        return
    for item, after in source:
        done += 1
        after["n"] = done
        yield item, after
        if limit is not None and done >= limit:
            return


def _jsonl(path: Path, where: str, cursor: dict) -> Iterator[tuple[Any, dict]]:
    """One JSON value per line; blank lines are skipped."""
    offset, line = cursor.get("offset", 0), cursor.get("line", 0)
    with _open(path) as file:
        file.seek(offset)
        for raw in file:
            start, line, offset = offset, line + 1, offset + len(raw)
            if raw.isspace():
                continue
            try:
                item = _DECODER.decode(raw.decode("utf-8").lstrip("\ufeff") if start == 0 else raw.decode("utf-8"))
            except ValueError as exc:
                raise _reader_error(f"line {line} of {where} (byte {start}) is not JSON: {_why(exc)}") from None
            yield item, {"offset": offset, "line": line}


def _json(path: Path, where: str, cursor: dict, pointer: list[str]) -> Iterator[tuple[Any, dict]]:
    """A JSON array (or the array ``ItemsPointer`` selects), streamed: only the current item is parsed into memory."""
    with _open(path) as file:
        scan = _Scanner(file, where, cursor.get("offset", 0))
        if "offset" in cursor:
            if scan.peek() == "]":
                return
            scan.expect(",")
        else:
            if scan.peek() == "":
                raise _reader_error(f"{where} is empty: a JSON InputType needs an array")
            for index, token in enumerate(pointer):
                scan.descend(token, "/" + "/".join(pointer[:index + 1]))
            if scan.peek() != "[":
                raise _reader_error("Attempting to map over non-iterable node.")
            scan.take()
            if scan.peek() == "]":
                return
        while True:
            item = scan.value()
            yield item, {"offset": scan.offset()}
            separator = scan.take()
            if separator == "]":
                return
            if separator != ",":
                raise _reader_error(f"{where} is not a JSON array: expected ',' or ']' at byte {scan.offset() - 1}, "
                                    f"found {separator or 'the end of the file'!r}")


def _csv_file(path: Path, where: str, cursor: dict, options: dict) -> Iterator[tuple[Any, dict]]:
    """Rows as objects keyed by the header, every value a string (RFC 4180 quoting). Extra cells are dropped and
    missing ones are "", as AWS does; empty lines are skipped."""
    with _open(path, options.get("gzipped", False)) as file:
        headers = options["headers"]
        lines = _Lines(file, 0)
        if options["first_row"]:
            try:
                headers = next((row for row in csv.reader(lines, delimiter=options["delimiter"]) if row), None)
            except (csv.Error, ValueError) as exc:
                raise _reader_error(f"cannot read the header row of {where} (line {lines.line}): {_why(exc)}") from None
            if headers is None:
                return
            if "offset" not in cursor:
                cursor = {"offset": lines.offset, "line": lines.line}
        if len(set(headers)) < len(headers):
            raise _reader_error("CSV headers cannot contain duplicates.")
        lines = _Lines(file, cursor.get("offset", 0), cursor.get("line", 0))
        rows = csv.reader(lines, delimiter=options["delimiter"])
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except (csv.Error, ValueError) as exc:
                raise _reader_error(f"line {lines.line} of {where} is not CSV: {_why(exc)}") from None
            if row:
                yield ({name: row[i] if i < len(row) else "" for i, name in enumerate(headers)},
                       {"offset": lines.offset, "line": lines.line})


class _Lines:
    """A binary file's lines as text, counting the bytes and lines consumed (the csv module pulls one at a time)."""

    def __init__(self, file: IO[bytes], offset: int, line: int = 0):
        file.seek(offset)
        self.file, self.offset, self.line = file, offset, line

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.file.readline()
        if not raw:
            raise StopIteration
        text = raw.decode("utf-8")
        if self.offset == 0 and text.startswith("\ufeff"):
            text = text[1:]
        self.offset += len(raw)
        self.line += 1
        return text


class _Scanner:
    """JSON text read in chunks: values are parsed one at a time with the C decoder; byte offsets are tracked so a
    cursor can point just past any item."""

    def __init__(self, file: IO[bytes], where: str, offset: int):
        file.seek(offset)
        self.file, self.where = file, where
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos, self.base, self.eof = "", 0, offset, False  # base: byte offset of buf[pos]
        self.ascii = True  # buf has no multi-byte character: byte and character offsets move together
        if offset == 0:
            self._fill()
            if self.buf.startswith("\ufeff"):
                self._advance(1)

    def offset(self) -> int:
        return self.base

    def _advance(self, to: int) -> None:
        self.base += to - self.pos if self.ascii else len(self.buf[self.pos:to].encode("utf-8"))
        self.pos = to

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.file.read(max(_CHUNK, len(self.buf) - self.pos))
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise _reader_error(f"{self.where} is not UTF-8 (near byte {self.base + len(self.buf) - self.pos}): "
                                f"{exc.reason}") from None
        self.buf, self.pos = self.buf[self.pos:] + text, 0
        self.ascii = self.buf.isascii()
        self.eof = not data
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end), without consuming it."""
        while True:
            pos = _WHITESPACE.match(self.buf, self.pos).end()
            self._advance(pos)
            if pos < len(self.buf) or not self._fill():
                return self.buf[pos] if pos < len(self.buf) else ""

    def take(self) -> str:
        char = self.peek()
        self._advance(self.pos + 1)
        return char

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise _reader_error(f"{self.where} is not a JSON array: expected {char!r} at byte {self.base}, found "
                                f"{found or 'the end of the file'!r}")
        self._advance(self.pos + 1)

    def value(self) -> Any:
        """Parse the next JSON value, reading more of the file while it may be cut off by the buffer's end."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buf) - 8
                if cut and self._fill():
                    continue
                where = self.base + len(self.buf[self.pos:exc.pos].encode("utf-8"))
                raise _reader_error(f"{self.where} is not valid JSON at byte {where}: {exc.msg}") from None
            except ValueError as exc:
                raise _reader_error(f"{self.where} is not valid JSON near byte {self.base}: {exc}") from None
            cut = end >= len(self.buf) or type(value) in (int, float) and self.buf[end] in ".eE+-0123456789"
            if cut and self._fill():  # a number may go on in the next chunk ("1" then "2", "-0." then "25")
                continue
            self._advance(end)
            return value

    def descend(self, token: str, path: str) -> None:
        """Move into the member (or element) ``token`` of the object (or array) that comes next."""
        opening = self.take()
        if opening == "{":
            if self.peek() == "}":
                raise _missing(path, self.where)
            while True:
                if self.peek() != '"':
                    self.expect('"')
                name = self.value()
                self.expect(":")
                if name == token:
                    return
                self.value()
                if self.take() != ",":
                    raise _missing(path, self.where)
        elif opening == "[" and token.isdigit():
            if self.peek() == "]":
                raise _missing(path, self.where)
            for _ in range(int(token)):
                self.value()
                if self.take() != ",":
                    raise _missing(path, self.where)
        else:
            raise _missing(path, self.where)


def _missing(path: str, where: str) -> StorageError:
    return _reader_error(f"ItemsPointer {path!r} selects nothing in {where}")


def _walk(folder: Path, folder_key: str, prefix: str, after: str | None) -> Iterator[tuple[str, Path]]:
    """The files below ``folder`` whose keys start with ``prefix`` and come after ``after``, in key order (UTF-8 byte
    order, as S3 lists: a folder sorts by its name followed by "/"). Subtrees entirely before ``after`` are skipped."""
    try:
        entries = [(entry.name + "/" if entry.is_dir() else entry.name, entry) for entry in os.scandir(folder)]
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise _reader_error(f"cannot list {folder}: {exc.strerror or exc}") from None
    for name, entry in sorted(entries, key=lambda pair: pair[0]):
        key = folder_key + name
        if name.startswith(TEMP_PREFIX) or not (key.startswith(prefix) or prefix.startswith(key)):
            continue
        if after is not None and key <= after and not after.startswith(key):
            continue
        if name.endswith("/"):
            yield from _walk(Path(entry.path), key, prefix, after)
        elif entry.is_file() and key.startswith(prefix) and (after is None or key > after):
            yield key, Path(entry.path)


# -- writing
class _ResultFiles:
    """One status's result files: entries appended to a temporary file, a new file started past ``limit`` bytes."""

    def __init__(self, folder: Path, folder_key: str, status: str, extension: str, limit: int):
        self.folder, self.folder_key, self.status, self.extension = folder, folder_key, status, extension
        self.jsonl = extension == ".jsonl"
        self.limit = limit
        self.done: list[tuple[Path, str]] = []  # (temporary path, final name)
        self.listed: list[dict] = []  # the manifest's {"Key", "Size"} entries
        self.file: IO[bytes] | None = None
        self.temp: Path | None = None
        self.size = self.count = 0

    def add(self, value: Any) -> None:
        data = _ENCODE(value).encode("utf-8")
        data = data + b"\n" if self.jsonl else data
        closing = 0 if self.jsonl else 1
        if self.file is not None and self.size + len(data) + 1 + closing > self.limit:
            self._finish()
        if self.file is None:
            self.temp = self.folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
            self.file = open(self.temp, "wb")
            self.size = self.count = 0
            if not self.jsonl:
                self.size += self.file.write(b"[")
        if self.count and not self.jsonl:
            self.size += self.file.write(b",")
        self.size += self.file.write(data)
        self.count += 1

    def _finish(self) -> None:
        if not self.jsonl:
            self.size += self.file.write(b"]")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.file = None
        name = f"{self.status}_{len(self.done)}{self.extension}"
        self.done.append((self.temp, name))
        self.listed.append({"Key": f"{self.folder_key}/{name}", "Size": self.size})

    def close(self) -> None:
        if self.file is not None:
            self._finish()

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        for temp in [self.temp, *(temp for temp, _ in self.done)]:
            if temp is not None:
                temp.unlink(missing_ok=True)

    def commit(self) -> list[str]:
        for temp, name in self.done:
            os.replace(temp, self.folder / name)
        return [name for _, name in self.done]


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
    with open(temp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


def _writer_config(config: Any) -> tuple[str, str]:
    """(OutputType, Transformation) of a WriterConfig; exporting without one writes AWS's full records as JSON."""
    if config is None:
        return "JSON", "NONE"
    if not isinstance(config, dict):
        raise _writer_error(f"WriterConfig must be an object, not {_kind(config)}")
    output_type = config.get("OutputType", "JSON")
    transformation = config.get("Transformation", "NONE")
    if output_type not in ("JSON", "JSONL"):
        raise _writer_error(f"WriterConfig.OutputType {output_type!r} is not JSON or JSONL")
    if transformation not in ("NONE", "COMPACT", "FLATTEN"):
        raise _writer_error(f"WriterConfig.Transformation {transformation!r} is not NONE, COMPACT or FLATTEN")
    return output_type, transformation


def _transformed(status: str, entry: Any, transformation: str) -> list[Any]:
    """What a result file holds for one child execution: its record (NONE, and any failed or pending child), or its
    output (COMPACT), an array output contributing its elements (FLATTEN)."""
    if transformation == "NONE" or status != "SUCCEEDED" or not isinstance(entry, dict):
        return [entry]
    output = entry.get("Output")
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            pass
    return output if transformation == "FLATTEN" and isinstance(output, list) else [output]


# -- small helpers
def _open(path: Path, gzipped: bool = False) -> IO[bytes]:
    try:
        return gzip.open(path, "rb") if gzipped else open(path, "rb")
    except OSError as exc:
        raise _reader_error(f"cannot read {path}: {exc.strerror or exc}") from None


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_key(key: Any, error: str) -> str:
    """A Key as a relative path that stays inside its bucket's folder."""
    if not isinstance(key, str) or not key:
        raise StorageError(error, f"invalid Key {key!r}: a key is a non-empty string")
    parts = key.split("/")
    if key.startswith("/") or "\\" in key or "\x00" in key or any(part in (".", "..") for part in parts) \
            or re.match(r"^[A-Za-z]:", key):
        raise StorageError(error, f"invalid Key {key!r}: keys are relative paths inside the bucket's folder, "
                                  "without '.' or '..' parts, backslashes or a leading '/'")
    return key


def _cursor(cursor: Any) -> dict:
    if cursor is None:
        return {}
    if not isinstance(cursor, dict):
        raise TypeError(f"cursor must be None or a cursor items() gave, not {cursor!r}")
    return cursor


def _max_items(value: Any) -> int | None:
    """MaxItems: None or 0 read everything; AWS never reads past 100,000,000 items."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _reader_error(f"field MaxItems must be an integer, not {value!r}")
    if value < 0:
        raise _reader_error("field MaxItems must be positive")
    return min(value, MAX_ITEMS) if value else None


def _pointer(value: Any) -> list[str]:
    """An ItemsPointer (RFC 6901 JSON Pointer) as its reference tokens."""
    if value is None or value == "":
        return []
    if not isinstance(value, str) or not value.startswith("/"):
        raise _reader_error(f"ItemsPointer {value!r} is not a JSON Pointer such as \"/data/items\"")
    return [token.replace("~1", "/").replace("~0", "~") for token in value[1:].split("/")]


def _csv_options(config: dict) -> dict:
    location = config.get("CSVHeaderLocation", "FIRST_ROW")
    delimiter = config.get("CSVDelimiter", "COMMA")
    if delimiter not in DELIMITERS:
        raise _reader_error(f"CSVDelimiter {delimiter!r} is not one of {', '.join(DELIMITERS)}")
    if location == "FIRST_ROW":
        return {"first_row": True, "headers": None, "delimiter": DELIMITERS[delimiter]}
    if location != "GIVEN":
        raise _reader_error(f"CSVHeaderLocation {location!r} is not FIRST_ROW or GIVEN")
    headers = config.get("CSVHeaders")
    if not isinstance(headers, list) or not headers or not all(isinstance(h, str) for h in headers):
        raise _reader_error("CSVHeaderLocation GIVEN needs CSVHeaders: a non-empty list of strings")
    return {"first_row": False, "headers": headers, "delimiter": DELIMITERS[delimiter]}


def _positive(batcher: dict, field: str) -> int | None:
    value = batcher.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _reader_error(f"{field} must be a positive integer, not {value!r}")
    return value


def _size(value: Any) -> int:
    text = _ENCODE(value)
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)  # NaN and Infinity are not JSON
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _why(exc: Exception) -> str:
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)


def _kind(value: Any) -> str:
    return type(value).__name__


def _reader_error(cause: str) -> StorageError:
    return StorageError(ITEM_READER_FAILED, cause)


def _writer_error(cause: str) -> StorageError:
    return StorageError(RESULT_WRITER_FAILED, cause)
