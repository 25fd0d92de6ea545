"""STAND-IN for branch ``dmapio``'s local storage (S3 buckets as folders): only what engine/map_runs.py and its tests
need. On merge, dmapio's module replaces this file whole."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import ITEM_READER_FAILED, RESULT_WRITER_FAILED, StatemillError
from .jsonvalue import dumps


class StorageError(StatemillError):
    def __init__(self, error: str, cause: str):
        super().__init__(cause)
        self.error, self.cause = error, cause


def storage_root(option: str | None = None) -> Path:
    return Path(option or os.environ.get("STATEMILL_STORAGE") or "storage")


class Storage:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def items(self, reader: dict, cursor: Any = None) -> Iterator[tuple[Any, Any]]:
        """(item, cursor after it) from the reader's object, from ``cursor`` on: JSON, JSONL, CSV (FIRST_ROW)."""
        args = reader.get("Parameters") or reader.get("Arguments") or {}
        config = reader.get("ReaderConfig") or {}
        kind = config.get("InputType", "JSON")
        path = self.root / str(args.get("Bucket")) / str(args.get("Key"))
        if not path.is_file():
            raise StorageError(ITEM_READER_FAILED, f"The specified key does not exist: {args.get('Key')}")
        offset, count = cursor or (0, 0)
        limit = config.get("MaxItems") or None
        if kind == "JSON":
            items = json.loads(path.read_text(encoding="utf-8"))
            for index in range(offset, len(items) if limit is None else min(limit, len(items))):
                yield items[index], (index + 1, index + 1)
            return
        with path.open("rb") as f:
            header = None
            if kind == "CSV":
                header = next(csv.reader([f.readline().decode("utf-8")]))
                offset = max(offset, f.tell())
            f.seek(offset)
            while limit is None or count < limit:
                line = f.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                text = line.decode("utf-8")
                try:
                    item = json.loads(text) if kind == "JSONL" else dict(zip(header, next(csv.reader(io.StringIO(text)))))
                except ValueError as exc:
                    raise StorageError(ITEM_READER_FAILED, f"Cannot parse {args.get('Key')}: {exc}") from None
                count += 1
                yield item, (f.tell(), count)

    def write_results(self, writer: dict, map_run_arn: str, records: Iterable[tuple[str, dict]]) -> dict:
        args = writer.get("Parameters") or writer.get("Arguments") or {}
        bucket, prefix = str(args.get("Bucket")), str(args.get("Prefix", "")).strip("/")
        run_id = map_run_arn.rsplit(":", 1)[-1]
        folder = self.root / bucket / prefix / run_id
        try:
            folder.mkdir(parents=True, exist_ok=True)
            groups: dict[str, list] = {}
            for status, record in records:
                groups.setdefault(status, []).append(record)
            files = {}
            for status, found in groups.items():
                name = f"{status}_0.json"
                (folder / name).write_text(dumps(found))
                files[status] = [{"Key": f"{prefix}/{run_id}/{name}".lstrip("/"), "Size": 0}]
            manifest = {"DestinationBucket": bucket, "MapRunArn": map_run_arn,
                        "ResultFiles": {k: files.get(k, []) for k in ("FAILED", "PENDING", "SUCCEEDED")}}
            (folder / "manifest.json").write_text(dumps(manifest))
        except OSError as exc:
            raise StorageError(RESULT_WRITER_FAILED, str(exc)) from None
        return {"Bucket": bucket, "Key": f"{prefix}/{run_id}/manifest.json".lstrip("/")}


def batches(pairs: Iterable[tuple[Any, Any]], batcher: dict | None) -> Iterator[tuple[dict, Any]]:
    size = (batcher or {}).get("MaxItemsPerBatch") or None
    limit = (batcher or {}).get("MaxInputBytesPerBatch") or None
    items, used, last = [], 0, None
    for item, cursor in pairs:
        n = len(dumps(item).encode())
        if items and limit is not None and used + n > limit:
            yield _batch(items, batcher), last
            items, used = [], 0
        items.append(item)
        used += n
        last = cursor
        if size is not None and len(items) >= size:
            yield _batch(items, batcher), last
            items, used = [], 0
    if items:
        yield _batch(items, batcher), last


def _batch(items: list, batcher: dict | None) -> dict:
    return {"Items": items, **({"BatchInput": batcher["BatchInput"]} if "BatchInput" in (batcher or {}) else {})}

