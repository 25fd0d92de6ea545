"""Distributed Map's storage over local folders: what each ItemReader yields, resuming from any cursor, MaxItems,
ItemBatcher, the ResultWriter's files and manifest, and where the storage root comes from.

Expected values follow AWS: CSV cells are strings, short rows get "" and long rows lose their extra cells, duplicate
headers fail with "CSV headers cannot contain duplicates.", MaxItems 0 reads everything and a negative one fails with
"field MaxItems must be positive", a JSON object fails with "Attempting to map over non-iterable node." (recorded
against AWS in LocalStack's snapshots). Real files in tmp_path only.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import sys
from pathlib import Path

import pytest

from statemill.engine.errors import ITEM_READER_FAILED, RESULT_WRITER_FAILED
from statemill.engine.storage import ENV_VAR, Storage, StorageError, batches, storage_root

sys.path.insert(0, str(Path(__file__).parent))
from clitools import statemill  # noqa: E402

GET = "arn:aws:states:::s3:getObject"
LIST = "arn:aws:states:::s3:listObjectsV2"
PUT = "arn:aws:states:::s3:putObject"
VALUES = [{"zero": 0, "no": False, "empty": "", "none": None}, 0, False, "", None, [], {}, "é ✓", 1.5, -2]
RUN_ARN = "arn:aws:states:us-east-1:000000000000:mapRun:machine/Map:2f7a1c3e-0d4b-4c8e-9a51-6e0b1d2c3f40"
RUN_ID = RUN_ARN.rsplit(":", 1)[1]


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    (tmp_path / "bucket").mkdir()
    return Storage(tmp_path)


def put(storage: Storage, key: str, data: str | bytes) -> Path:
    path = storage.root / "bucket" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def get(key: str, input_type: str, **config) -> dict:
    return {"Resource": GET, "Parameters": {"Bucket": "bucket", "Key": key},
            "ReaderConfig": {"InputType": input_type, **config}}


def listing(prefix: str | None = None, **config) -> dict:
    params = {"Bucket": "bucket"} if prefix is None else {"Bucket": "bucket", "Prefix": prefix}
    return {"Resource": LIST, "Parameters": params, **({"ReaderConfig": config} if config else {})}


def read(storage: Storage, reader: dict, cursor=None) -> list:
    return [item for item, _ in storage.items(reader, cursor)]


def failure(call) -> StorageError:
    with pytest.raises(StorageError) as caught:
        call()
    return caught.value


# -- what each reader yields
@pytest.mark.parametrize("input_type, text", [
    ("JSON", json.dumps(VALUES, ensure_ascii=False)),
    ("JSON", json.dumps(VALUES, ensure_ascii=False, indent=2)),
    ("JSONL", "\n".join(json.dumps(v, ensure_ascii=False) for v in VALUES) + "\n"),
    ("JSONL", "\r\n".join(json.dumps(v, ensure_ascii=False) for v in VALUES)),
], ids=["json", "json_indented", "jsonl", "jsonl_crlf_no_final_newline"])
def test_json_and_jsonl_yield_every_value_as_is(storage, input_type, text):
    put(storage, "data", text)
    assert read(storage, get("data", input_type)) == VALUES


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_json_items_that_straddle_read_chunks_parse_and_resume_exactly(storage, monkeypatch, chunk):
    import statemill.engine.storage as module
    monkeypatch.setattr(module, "_CHUNK", chunk)
    values = [123456789, "é✓ \\\" \u00e9", {"k": [1.5e-3, True, None]}, "x" * 50, -0.25, []]
    put(storage, "c.json", " \n[ " + " ,\n".join(json.dumps(v, ensure_ascii=False) for v in values) + " ]\n")
    reader = get("c.json", "JSON")
    full = list(storage.items(reader))
    assert [item for item, _ in full] == values
    for index, (_, cursor) in enumerate(full):
        assert [item for item, _ in storage.items(reader, cursor)] == values[index + 1:]


def test_jsonl_skips_blank_lines(storage):
    put(storage, "data.jsonl", '\n{"a": 0}\n\n   \n\t\nnull\n\n')
    assert read(storage, get("data.jsonl", "JSONL")) == [{"a": 0}, None]


def test_the_utf8_byte_order_mark_is_not_part_of_the_content(storage):
    put(storage, "a.json", "\ufeff[0]".encode())
    put(storage, "a.jsonl", "\ufeff0\n".encode())
    put(storage, "a.csv", "\ufeffA\n0\n".encode())
    assert read(storage, get("a.json", "JSON")) == [0]
    assert read(storage, get("a.jsonl", "JSONL")) == [0]
    assert read(storage, get("a.csv", "CSV")) == [{"A": "0"}]


@pytest.mark.parametrize("pointer, document, expected", [
    ("/items", {"items": [0, False]}, [0, False]),
    ("/data/rows", {"skip": [1, {"z": "]}"}], "data": {"x": "", "rows": [None, ""]}}, [None, ""]),
    ("/a~1b/m~0n", {"a/b": {"m~n": [0]}}, [0]),
    ("/list/1", {"list": [[9], ["picked"]]}, ["picked"]),
    ("", [0, ""], [0, ""]),
], ids=["member", "nested_after_siblings", "escaped_tokens", "array_index", "empty_pointer_is_the_document"])
def test_items_pointer_selects_the_array_inside_a_json_document(storage, pointer, document, expected):
    put(storage, "doc.json", json.dumps(document))
    assert read(storage, get("doc.json", "JSON", ItemsPointer=pointer)) == expected


@pytest.mark.parametrize("pointer", ["/missing", "/items/x", "/list/5"])
def test_an_items_pointer_that_selects_nothing_fails_naming_it(storage, pointer):
    put(storage, "doc.json", json.dumps({"items": [0], "list": [[0]]}))
    error = failure(lambda: read(storage, get("doc.json", "JSON", ItemsPointer=pointer)))
    assert error.error == ITEM_READER_FAILED and repr(pointer) in error.cause


@pytest.mark.parametrize("document", [{"Hello": "world"}, 0, "text", None])
def test_a_json_document_that_is_not_an_array_fails_as_aws_does(storage, document):
    put(storage, "doc.json", json.dumps(document))
    error = failure(lambda: read(storage, get("doc.json", "JSON")))
    assert (error.error, error.cause) == (ITEM_READER_FAILED, "Attempting to map over non-iterable node.")


# -- CSV
CSV_AWS = "Col1,Col2,Col3\nValue1,Value2,Value3\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \n"


def test_csv_first_row_as_aws_reads_it(storage):
    put(storage, "file.csv", CSV_AWS)
    assert read(storage, get("file.csv", "CSV", CSVHeaderLocation="FIRST_ROW")) == [
        {"Col1": "Value1", "Col2": "Value2", "Col3": "Value3"}, {"Col1": "Value4", "Col2": "Value5", "Col3": "Value6"},
        {"Col1": "", "Col2": "", "Col3": ""}, {"Col1": "true", "Col2": "1", "Col3": "'HelloWorld'"},
        {"Col1": "Null", "Col2": "None", "Col3": ""}, {"Col1": "   ", "Col2": "", "Col3": ""}]


@pytest.mark.parametrize("headers, first", [
    (["H1", "H2", "H3"], {"H1": "Col1", "H2": "Col2", "H3": "Col3"}),
    (["H1"], {"H1": "Col1"}),
    (["H1", "H2", "H3", "H4"], {"H1": "Col1", "H2": "Col2", "H3": "Col3", "H4": ""}),
], ids=["as_many", "fewer_drop_cells", "more_get_empty_strings"])
def test_csv_given_headers_read_every_row_including_the_first(storage, headers, first):
    put(storage, "file.csv", CSV_AWS)
    items = read(storage, get("file.csv", "CSV", CSVHeaderLocation="GIVEN", CSVHeaders=headers))
    assert len(items) == 7 and items[0] == first and all(list(item) == headers for item in items)


def test_csv_first_row_keeps_an_empty_header_name(storage):
    put(storage, "file.csv", "H1,\nValue4,Value5,Value6\n")
    assert read(storage, get("file.csv", "CSV")) == [{"H1": "Value4", "": "Value5"}]


@pytest.mark.parametrize("config", [{"CSVHeaderLocation": "GIVEN", "CSVHeaders": ["H1", "H1", "H3"]}, {}],
                         ids=["given", "first_row"])
def test_duplicate_csv_headers_fail_as_aws_does(storage, config):
    put(storage, "file.csv", "H1,H1,H3\n0,1,2\n")
    error = failure(lambda: read(storage, get("file.csv", "CSV", **config)))
    assert (error.error, error.cause) == (ITEM_READER_FAILED, "CSV headers cannot contain duplicates.")


def test_csv_quoting_follows_rfc_4180(storage):
    put(storage, "q.csv", 'text,n\r\n"a, b",0\r\n"say ""hi""",1\r\n"two\r\nlines",2\r\n"",3\r\n')
    assert read(storage, get("q.csv", "CSV")) == [
        {"text": "a, b", "n": "0"}, {"text": 'say "hi"', "n": "1"}, {"text": "two\r\nlines", "n": "2"},
        {"text": "", "n": "3"}]


@pytest.mark.parametrize("name, char", [("COMMA", ","), ("PIPE", "|"), ("SEMICOLON", ";"), ("SPACE", " "),
                                        ("TAB", "\t")])
def test_csv_delimiters(storage, name, char):
    put(storage, "d.csv", f"a{char}b\n0{char}false\n{char}null\n")
    assert read(storage, get("d.csv", "CSV", CSVDelimiter=name)) == [{"a": "0", "b": "false"}, {"a": "", "b": "null"}]


def test_csv_values_are_strings_and_empty_lines_are_skipped(storage):
    put(storage, "v.csv", "n,b,s,z\n\n0,false,,null\n\n")
    assert read(storage, get("v.csv", "CSV")) == [{"n": "0", "b": "false", "s": "", "z": "null"}]


@pytest.mark.parametrize("config, fragment", [
    ({"CSVDelimiter": "DASH"}, "CSVDelimiter"),
    ({"CSVHeaderLocation": "LAST_ROW"}, "CSVHeaderLocation"),
    ({"CSVHeaderLocation": "GIVEN"}, "CSVHeaders"),
    ({"CSVHeaderLocation": "GIVEN", "CSVHeaders": []}, "CSVHeaders"),
])
def test_a_bad_csv_reader_config_fails_before_reading(storage, config, fragment):
    put(storage, "v.csv", "a\n0\n")
    error = failure(lambda: storage.items(get("v.csv", "CSV", **config)))
    assert error.error == ITEM_READER_FAILED and fragment in error.cause


# -- empty and malformed content
@pytest.mark.parametrize("input_type, text", [("JSONL", ""), ("JSONL", "\n\n"), ("CSV", ""), ("CSV", "a,b\n"),
                                              ("JSON", "[]"), ("JSON", " [ ] ")])
def test_empty_content_yields_no_items(storage, input_type, text):
    put(storage, "empty", text)
    assert read(storage, get("empty", input_type)) == []


def test_an_empty_json_file_fails(storage):
    put(storage, "empty.json", "")
    assert "empty" in failure(lambda: read(storage, get("empty.json", "JSON"))).cause


def test_a_malformed_jsonl_line_is_located_after_the_good_lines_before_it(storage):
    put(storage, "bad.jsonl", '{"a": 0}\n\n{"a": oops}\n{"a": 2}\n')
    items = storage.items(get("bad.jsonl", "JSONL"))
    assert next(items)[0] == {"a": 0}
    error = failure(lambda: next(items))
    assert error.error == ITEM_READER_FAILED and "line 3" in error.cause and "byte 10" in error.cause
    assert "s3://bucket/bad.jsonl" in error.cause


@pytest.mark.parametrize("text, byte", [('[0, {"a": oops}]', 10), ("[0, 1,]", 6), ("[0 1]", 3), ("[0, 1", 5),
                                        ("[NaN]", 1)])
def test_malformed_json_is_located_by_byte_offset(storage, text, byte):
    put(storage, "bad.json", text)
    error = failure(lambda: read(storage, get("bad.json", "JSON")))
    assert error.error == ITEM_READER_FAILED and f"byte {byte}" in error.cause


def test_jsonl_rejects_nan_which_is_not_json(storage):
    put(storage, "nan.jsonl", "0\nNaN\n")
    assert "line 2" in failure(lambda: read(storage, get("nan.jsonl", "JSONL"))).cause


def test_content_that_is_not_utf8_fails(storage):
    put(storage, "latin.json", b'["\xe9"]')
    assert "UTF-8" in failure(lambda: read(storage, get("latin.json", "JSON"))).cause


# -- resuming
def manifest_bucket(storage: Storage) -> dict:
    """An S3 Inventory: a manifest naming one gzipped and one plain CSV file in the destination bucket."""
    rows = [["bucket", "a.txt", "0", "2024-01-01T00:00:00.000Z"], ["bucket", "b/c.txt", "12", ""],
            ["bucket", "d.txt", "3", "2024-01-02T00:00:00.000Z"]]
    buffers = []
    for part in (rows[:2], rows[2:]):
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL).writerows(part)
        buffers.append(text.getvalue().encode())
    put(storage, "inventory/data/one.csv.gz", gzip.compress(buffers[0]))
    put(storage, "inventory/data/two.csv", buffers[1])
    put(storage, "inventory/manifest.json", json.dumps({
        "sourceBucket": "bucket", "destinationBucket": "arn:aws:s3:::bucket", "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate",
        "files": [{"key": "inventory/data/one.csv.gz", "size": 0, "MD5checksum": ""},
                  {"key": "inventory/data/two.csv", "size": 0, "MD5checksum": ""}]}))
    return get("inventory/manifest.json", "MANIFEST")


def readers(storage: Storage) -> dict[str, dict]:
    put(storage, "r.json", json.dumps(VALUES, ensure_ascii=False))
    put(storage, "r.jsonl", "\n".join(json.dumps(v, ensure_ascii=False) for v in VALUES) + "\n\n")
    put(storage, "r.csv", 'a,b\n0,false\n"x\ny",\n\n,null\n')
    put(storage, "p.json", json.dumps({"meta": [1, 2], "data": {"items": VALUES}}))
    put(storage, "tree/a.txt", "0")
    put(storage, "tree/a/b.txt", "")
    put(storage, "tree/a/c/d.txt", "null")
    put(storage, "tree/b.txt", "false")
    put(storage, "parts/1.jsonl", '0\n""\n')
    put(storage, "parts/2.jsonl", "")
    put(storage, "parts/sub/3.jsonl", "null\nfalse\n")
    return {"json": get("r.json", "JSON"), "jsonl": get("r.jsonl", "JSONL"), "csv": get("r.csv", "CSV"),
            "csv_given": get("r.csv", "CSV", CSVHeaderLocation="GIVEN", CSVHeaders=["x", "y"]),
            "json_pointer": get("p.json", "JSON", ItemsPointer="/data/items"), "manifest": manifest_bucket(storage),
            "listing": listing("tree/"),
            "flattened": listing("parts/", InputType="JSONL", Transformation="LOAD_AND_FLATTEN")}


@pytest.mark.parametrize("name", ["json", "jsonl", "csv", "csv_given", "json_pointer", "manifest", "listing",
                                  "flattened"])
def test_resuming_from_every_cursor_reads_the_rest_exactly(storage, name):
    reader = readers(storage)[name]
    full = list(storage.items(reader))
    assert len(full) >= 3
    for index, (_, cursor) in enumerate(full):
        cursor = json.loads(json.dumps(cursor))  # cursors are small JSON data the runtime stores
        assert list(storage.items(reader, cursor)) == full[index + 1:], cursor


@pytest.mark.parametrize("max_items, count", [(0, 4), (1, 1), (2, 2), (4, 4), (100_000_001, 4), (None, 4)])
def test_max_items_limits_the_items_and_zero_means_all(storage, max_items, count):
    put(storage, "file.csv", "Col1,Col2\nValue1,Value2\nValue3,Value4\nValue5,Value6\nValue7,Value8\n")
    config = {} if max_items is None else {"MaxItems": max_items}
    items = read(storage, get("file.csv", "CSV", **config))
    assert items == [{"Col1": f"Value{2 * i + 1}", "Col2": f"Value{2 * i + 2}"} for i in range(count)]


@pytest.mark.parametrize("name", ["json", "jsonl", "csv", "manifest", "listing"])
def test_max_items_holds_across_resumes(storage, name):
    reader = dict(readers(storage)[name])
    reader["ReaderConfig"] = dict(reader.get("ReaderConfig", {}), MaxItems=3)
    first = list(storage.items(reader))
    assert len(first) == 3
    for index, (_, cursor) in enumerate(first):
        assert list(storage.items(reader, cursor)) == first[index + 1:]


@pytest.mark.parametrize("value, cause", [(-1, "field MaxItems must be positive"), (1.5, "integer"),
                                          ("2", "integer"), (True, "integer")])
def test_an_invalid_max_items_fails(storage, value, cause):
    put(storage, "a.json", "[0]")
    assert cause in failure(lambda: storage.items(get("a.json", "JSON", MaxItems=value))).cause


# -- listObjectsV2
def test_listing_gives_s3_object_entries_in_key_order_recursively(storage):
    for key, data in [("b.txt", "12"), ("a/b", ""), ("a.txt", "0"), ("a/c/d", "null"), ("a-z", "x")]:
        put(storage, key, data)
    (storage.root / "bucket" / "empty-folder").mkdir()
    items = read(storage, listing())
    assert [item["Key"] for item in items] == ["a-z", "a.txt", "a/b", "a/c/d", "b.txt"]
    first = items[1]
    path = storage.root / "bucket" / "a.txt"
    assert first == {"Etag": f'"{hashlib.md5(b"0").hexdigest()}"', "Key": "a.txt",
                     "LastModified": int(path.stat().st_mtime), "Size": 1, "StorageClass": "STANDARD"}
    assert [item["Size"] for item in items] == [1, 1, 0, 4, 2]


@pytest.mark.parametrize("prefix, keys", [
    ("", ["dat.txt", "data/0", "data/x/1", "other"]),
    ("da", ["dat.txt", "data/0", "data/x/1"]),
    ("data", ["data/0", "data/x/1"]),
    ("data/", ["data/0", "data/x/1"]),
    ("data/x", ["data/x/1"]),
    ("nothing/", []),
], ids=["all", "partial_name", "folder_name", "folder", "nested", "absent"])
def test_listing_prefix_is_a_key_prefix_not_a_folder(storage, prefix, keys):
    for key in ["dat.txt", "data/0", "data/x/1", "other"]:
        put(storage, key, "")
    assert [item["Key"] for item in read(storage, listing(prefix))] == keys


def test_load_and_flatten_reads_the_items_of_every_object_listed(storage):
    put(storage, "in/a.csv", "k,v\n0,false\n")
    put(storage, "in/b/c.csv", "k\n\"\"\n")
    put(storage, "in/b.csv", "k,v\nnull,\n")
    reader = listing("in/", InputType="CSV", Transformation="LOAD_AND_FLATTEN")
    assert read(storage, reader) == [{"k": "0", "v": "false"}, {"k": "null", "v": ""}, {"k": ""}]


@pytest.mark.parametrize("config, fragment", [({"Transformation": "LOAD"}, "Transformation"),
                                              ({"Transformation": "LOAD_AND_FLATTEN"}, "InputType"),
                                              ({"Transformation": "LOAD_AND_FLATTEN", "InputType": "MANIFEST"},
                                               "InputType")])
def test_an_unusable_listing_transformation_fails_at_once(storage, config, fragment):
    assert fragment in failure(lambda: storage.items(listing("", **config))).cause


# -- batching
def numbered(count: int, size: int = 1):
    """(item, cursor) pairs like a reader's: item i is {"i": i, "pad": "x" * size}."""
    return ((({"i": i, "pad": "x" * size}), {"n": i + 1}) for i in range(count))


def json_size(value) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


@pytest.mark.parametrize("count, per_batch, sizes", [(5, 2, [2, 2, 1]), (4, 2, [2, 2]), (1, 10, [1]), (0, 3, [])])
def test_batches_by_item_count(count, per_batch, sizes):
    out = list(batches(numbered(count), {"MaxItemsPerBatch": per_batch}))
    assert [len(batch["Items"]) for batch, _ in out] == sizes
    assert [cursor for _, cursor in out] == [{"n": sum(sizes[:k + 1])} for k in range(len(sizes))]
    assert all(set(batch) == {"Items"} for batch, _ in out)


@pytest.mark.parametrize("batch_input", [{"zero": 0, "no": False, "empty": "", "none": None}, None, ""])
def test_batches_by_bytes_count_the_whole_child_input_with_batch_input(batch_input):
    limit = 200
    out = list(batches(numbered(12, size=10), {"MaxInputBytesPerBatch": limit, "BatchInput": batch_input}))
    items = [item for batch, _ in out for item in batch["Items"]]
    assert [item["i"] for item in items] == list(range(12))
    for number, (batch, _) in enumerate(out):
        assert batch["BatchInput"] == batch_input
        assert json_size(batch) <= limit
        if number + 1 < len(out):  # full: the next item would not have fitted
            nxt = dict(batch, Items=batch["Items"] + [out[number + 1][0]["Items"][0]])
            assert json_size(nxt) > limit


def test_both_limits_apply_whichever_comes_first():
    out = list(batches(numbered(10, size=10), {"MaxItemsPerBatch": 3, "MaxInputBytesPerBatch": 70}))
    assert [len(batch["Items"]) for batch, _ in out] == [2, 2, 2, 2, 2]
    out = list(batches(numbered(10, size=1), {"MaxItemsPerBatch": 3, "MaxInputBytesPerBatch": 1000}))
    assert [len(batch["Items"]) for batch, _ in out] == [3, 3, 3, 1]


def test_without_a_byte_limit_batches_are_cut_by_count_only():
    out = list(batches(numbered(5, size=100_000), {"MaxItemsPerBatch": 4}))
    assert [len(batch["Items"]) for batch, _ in out] == [4, 1]


@pytest.mark.parametrize("batcher", [{"MaxInputBytesPerBatch": 262_145}, {"MaxItemsPerBatch": 0},
                                     {"MaxItemsPerBatch": 1.5}, {"MaxInputBytesPerBatch": False}])
def test_invalid_batch_limits_fail(batcher):
    assert failure(lambda: list(batches(numbered(1), batcher))).error == ITEM_READER_FAILED


def test_an_item_too_big_for_any_batch_fails():
    pairs = numbered(3, size=300)
    error = failure(lambda: list(batches(pairs, {"MaxInputBytesPerBatch": 200, "BatchInput": {"k": 0}})))
    assert error.error == ITEM_READER_FAILED and "item 0" in error.cause and "MaxInputBytesPerBatch" in error.cause


def test_without_a_batcher_items_pass_through():
    assert list(batches(iter([(0, {"n": 1}), (None, {"n": 2})]), None)) == [(0, {"n": 1}), (None, {"n": 2})]


def test_a_batcher_needs_a_limit():
    assert "MaxItemsPerBatch" in failure(lambda: list(batches(numbered(1), {"BatchInput": {}}))).cause


def test_resuming_a_batched_read_from_a_batch_cursor(storage):
    put(storage, "n.jsonl", "".join(f"{i}\n" for i in range(7)))
    reader = get("n.jsonl", "JSONL")
    out = list(batches(storage.items(reader), {"MaxItemsPerBatch": 3}))
    rest = list(batches(storage.items(reader, out[0][1]), {"MaxItemsPerBatch": 3}))
    assert [batch["Items"] for batch, _ in rest] == [[3, 4, 5], [6]] == [batch["Items"] for batch, _ in out[1:]]


# -- where objects are
@pytest.mark.parametrize("params, fragment", [
    ({"Bucket": "missing", "Key": "a.json"}, "bucket does not exist"),
    ({"Bucket": "bucket", "Key": "missing.json"}, "key does not exist"),
    ({"Bucket": "bucket", "Key": "../outside.json"}, "invalid Key"),
    ({"Bucket": "bucket", "Key": "sub/../../outside.json"}, "invalid Key"),
    ({"Bucket": "bucket", "Key": "/etc/passwd"}, "invalid Key"),
    ({"Bucket": "bucket", "Key": "a\\..\\..\\x"}, "invalid Key"),
    ({"Bucket": "bucket", "Key": ""}, "invalid Key"),
    ({"Bucket": "..", "Key": "outside.json"}, "invalid Bucket"),
    ({"Bucket": "bucket/sub", "Key": "a.json"}, "invalid Bucket"),
    ({"Bucket": "", "Key": "a.json"}, "invalid Bucket"),
], ids=["missing_bucket", "missing_key", "dotdot", "dotdot_nested", "absolute", "backslashes", "empty_key",
        "dotdot_bucket", "bucket_with_slash", "empty_bucket"])
def test_objects_outside_a_bucket_or_missing_fail_at_once(storage, params, fragment):
    put(storage, "a.json", "[0]")
    (storage.root / "outside.json").write_text("[0]")
    error = failure(lambda: storage.items({"Resource": GET, "Parameters": params,
                                           "ReaderConfig": {"InputType": "JSON"}}))
    assert error.error == ITEM_READER_FAILED and fragment in error.cause


def test_a_missing_bucket_error_says_which_folder_to_create(storage):
    error = failure(lambda: storage.items({"Resource": LIST, "Parameters": {"Bucket": "nope"}}))
    assert str(storage.root / "nope") in error.cause


@pytest.mark.parametrize("prefix", ["../", "/", "a/../../"])
def test_a_listing_prefix_cannot_leave_the_bucket(storage, prefix):
    assert failure(lambda: read(storage, listing(prefix))).error == ITEM_READER_FAILED


@pytest.mark.parametrize("reader, fragment", [
    ({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "bucket"}}, "Resource"),
    ({"Resource": GET, "Parameters": {"Bucket": "bucket", "Key": "a.json"}}, "InputType"),
    ({"Resource": GET, "Parameters": {"Bucket": "bucket", "Key": "a.json"}, "ReaderConfig": {"InputType": "PARQUET"}},
     "PARQUET"),
    ({"Resource": GET}, "Parameters"),
    ({"Resource": LIST, "Arguments": {"Bucket": "bucket", "Prefix": 0}}, "Prefix"),
])
def test_an_unusable_item_reader_fails_with_what_to_change(storage, reader, fragment):
    put(storage, "a.json", "[0]")
    error = failure(lambda: storage.items(reader))
    assert error.error == ITEM_READER_FAILED and fragment in error.cause


def test_arguments_work_like_parameters(storage):
    put(storage, "a.json", "[0]")
    assert read(storage, {"Resource": GET, "Arguments": {"Bucket": "bucket", "Key": "a.json"},
                          "ReaderConfig": {"InputType": "JSON"}}) == [0]


def test_manifest_items_are_the_inventory_rows_keyed_by_its_schema(storage):
    assert read(storage, manifest_bucket(storage)) == [
        {"Bucket": "bucket", "Key": "a.txt", "Size": "0", "LastModifiedDate": "2024-01-01T00:00:00.000Z"},
        {"Bucket": "bucket", "Key": "b/c.txt", "Size": "12", "LastModifiedDate": ""},
        {"Bucket": "bucket", "Key": "d.txt", "Size": "3", "LastModifiedDate": "2024-01-02T00:00:00.000Z"}]


# -- ResultWriter
def entry(i: int, status: str = "SUCCEEDED", output=None) -> dict:
    record = {"ExecutionArn": f"arn:aws:states:us-east-1:000000000000:execution:machine/Map:{i}",
              "Input": json.dumps({"i": i}), "InputDetails": {"Included": True}, "Name": str(i),
              "RedriveCount": 0, "RedriveStatus": "NOT_REDRIVABLE",
              "RedriveStatusReason": f"Execution is {status} and cannot be redriven",
              "StartDate": "2026-01-01T00:00:00.000Z", "StateMachineArn": "arn:aws:states:us-east-1:000000000000"
              ":stateMachine:machine/Map", "Status": status, "StopDate": "2026-01-01T00:00:01.000Z"}
    if status == "SUCCEEDED":
        record.update(Output=json.dumps({"i": i, "zero": 0, "no": False, "empty": "", "none": None}
                                        if output is None else output), OutputDetails={"Included": True})
    elif status == "FAILED":
        record.update(Error="States.TaskFailed", Cause="")
    return record


WRITER = {"Resource": PUT, "Parameters": {"Bucket": "bucket", "Prefix": "jobs"}}


def load_files(storage: Storage, manifest_key: str) -> tuple[dict, dict[str, list]]:
    manifest = json.loads((storage.root / "bucket" / manifest_key).read_text())
    contents = {}
    for status, files in manifest["ResultFiles"].items():
        contents[status] = []
        for file in files:
            path = storage.root / "bucket" / file["Key"]
            assert path.stat().st_size == file["Size"]
            text = path.read_text()
            contents[status] += json.loads(text) if path.suffix == ".json" else \
                [json.loads(line) for line in text.splitlines()]
    return manifest, contents


def test_results_are_written_by_status_with_aws_s_manifest(storage):
    records = [("SUCCEEDED", entry(0)), ("FAILED", entry(1, "FAILED")), ("SUCCEEDED", entry(2))]
    details = storage.write_results(WRITER, RUN_ARN, iter(records))
    assert details == {"Bucket": "bucket", "Key": f"jobs/{RUN_ID}/manifest.json"}
    manifest, contents = load_files(storage, details["Key"])
    assert list(manifest) == ["DestinationBucket", "MapRunArn", "ResultFiles"]
    assert manifest["DestinationBucket"] == "bucket" and manifest["MapRunArn"] == RUN_ARN
    assert list(manifest["ResultFiles"]) == ["FAILED", "PENDING", "SUCCEEDED"]
    assert [f["Key"] for f in manifest["ResultFiles"]["SUCCEEDED"]] == [f"jobs/{RUN_ID}/SUCCEEDED_0.json"]
    assert [f["Key"] for f in manifest["ResultFiles"]["FAILED"]] == [f"jobs/{RUN_ID}/FAILED_0.json"]
    assert manifest["ResultFiles"]["PENDING"] == []
    assert contents == {"SUCCEEDED": [entry(0), entry(2)], "FAILED": [entry(1, "FAILED")], "PENDING": []}
    assert sorted(p.name for p in (storage.root / "bucket" / "jobs" / RUN_ID).iterdir()) == [
        "FAILED_0.json", "SUCCEEDED_0.json", "manifest.json"]


@pytest.mark.parametrize("prefix, key", [("", f"{RUN_ID}/manifest.json"), ("a/b/", f"a/b/{RUN_ID}/manifest.json"),
                                         ("a/b", f"a/b/{RUN_ID}/manifest.json")])
def test_the_manifest_key_is_prefix_then_map_run_id(storage, prefix, key):
    writer = {"Resource": PUT, "Arguments": {"Bucket": "bucket", "Prefix": prefix}}
    assert storage.write_results(writer, RUN_ARN, [])["Key"] == key
    manifest, contents = load_files(storage, key)
    assert manifest["ResultFiles"] == {"FAILED": [], "PENDING": [], "SUCCEEDED": []}


def test_result_files_are_split_by_size(tmp_path):
    (tmp_path / "bucket").mkdir()
    storage = Storage(tmp_path, result_file_bytes=2000)
    records = [("SUCCEEDED", entry(i)) for i in range(10)] + [("PENDING", entry(10, "PENDING"))]
    manifest, contents = load_files(storage, storage.write_results(WRITER, RUN_ARN, records)["Key"])
    files = manifest["ResultFiles"]["SUCCEEDED"]
    assert len(files) > 2 and all(f["Size"] <= 2000 for f in files)
    assert [f["Key"].rsplit("/", 1)[1] for f in files] == [f"SUCCEEDED_{n}.json" for n in range(len(files))]
    assert contents["SUCCEEDED"] == [entry(i) for i in range(10)] and contents["PENDING"] == [entry(10, "PENDING")]


@pytest.mark.parametrize("config, succeeded", [
    ({"OutputType": "JSON", "Transformation": "NONE"}, [entry(0, output=[0, ""]), entry(1, output=None)]),
    ({"OutputType": "JSONL", "Transformation": "COMPACT"}, [[0, ""], {"i": 1, "zero": 0, "no": False, "empty": "",
                                                                       "none": None}]),
    ({"Transformation": "FLATTEN"}, [0, "", {"i": 1, "zero": 0, "no": False, "empty": "", "none": None}]),
], ids=["none", "compact_jsonl", "flatten"])
def test_writer_config_shapes_the_files(storage, config, succeeded):
    writer = dict(WRITER, WriterConfig=config)
    records = [("SUCCEEDED", entry(0, output=[0, ""])), ("SUCCEEDED", entry(1)), ("FAILED", entry(2, "FAILED"))]
    manifest, contents = load_files(storage, storage.write_results(writer, RUN_ARN, records)["Key"])
    assert contents["SUCCEEDED"] == succeeded
    assert contents["FAILED"] == [entry(2, "FAILED")]  # a failed child's record is never transformed
    extension = ".jsonl" if config.get("OutputType") == "JSONL" else ".json"
    assert manifest["ResultFiles"]["SUCCEEDED"][0]["Key"].endswith(extension)


def test_a_repeated_write_replaces_every_file_of_the_previous_one(tmp_path):
    (tmp_path / "bucket").mkdir()
    storage = Storage(tmp_path, result_file_bytes=1500)
    folder = tmp_path / "bucket" / "jobs" / RUN_ID
    first = [("SUCCEEDED", entry(i)) for i in range(8)] + [("FAILED", entry(9, "FAILED"))]
    storage.write_results(WRITER, RUN_ARN, first)
    (folder / ".statemill-tmp-leftover").write_text("half a file from a crashed attempt")
    details = storage.write_results(WRITER, RUN_ARN, [("SUCCEEDED", entry(0))])
    manifest, contents = load_files(storage, details["Key"])
    assert contents == {"SUCCEEDED": [entry(0)], "FAILED": [], "PENDING": []}
    assert sorted(p.name for p in folder.iterdir()) == ["SUCCEEDED_0.json", "manifest.json"]


def test_a_write_that_fails_midway_leaves_the_previous_results_whole(storage):
    storage.write_results(WRITER, RUN_ARN, [("SUCCEEDED", entry(0))])

    def records():
        yield "SUCCEEDED", entry(1)
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        storage.write_results(WRITER, RUN_ARN, records())
    manifest, contents = load_files(storage, f"jobs/{RUN_ID}/manifest.json")
    assert contents["SUCCEEDED"] == [entry(0)]
    assert not list((storage.root / "bucket").rglob(".statemill-tmp-*"))


@pytest.mark.parametrize("writer, records, fragment", [
    ({"Resource": PUT, "Parameters": {"Bucket": "missing"}}, [], "bucket does not exist"),
    ({"Resource": PUT, "Parameters": {"Bucket": "bucket", "Prefix": "../up"}}, [], "invalid Key"),
    ({"Resource": GET, "Parameters": {"Bucket": "bucket"}}, [], "Resource"),
    (dict(WRITER, WriterConfig={"OutputType": "CSV"}), [], "OutputType"),
    (dict(WRITER, WriterConfig={"Transformation": "SQUASH"}), [], "Transformation"),
    (WRITER, [("RUNNING", {})], "RUNNING"),
], ids=["missing_bucket", "prefix_escapes", "wrong_resource", "output_type", "transformation", "unknown_status"])
def test_an_unusable_result_writer_fails_with_result_writer_failed(storage, writer, records, fragment):
    error = failure(lambda: storage.write_results(writer, RUN_ARN, records))
    assert error.error == RESULT_WRITER_FAILED and fragment in error.cause


# -- the storage root
@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with a pyproject.toml, the current directory one level below it, no $STATEMILL_STORAGE."""
    (tmp_path / "pyproject.toml").write_text('[tool.statemill]\nstorage = "data/buckets"\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.delenv(ENV_VAR, raising=False)
    return tmp_path


def test_storage_root_option_wins(project, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(project / "env"))
    assert storage_root("given") == project / "sub" / "given"


def test_storage_root_environment_comes_next(project, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(project / "env"))
    assert storage_root(None) == project / "env"


def test_storage_root_pyproject_is_relative_to_its_folder(project):
    assert storage_root(None) == project / "data" / "buckets"


def test_storage_root_defaults_to_statemill_storage_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert storage_root() == tmp_path / "statemill-storage"


def test_the_engine_and_its_workers_share_a_storage(tmp_path):
    from statemill.engine import Engine
    engine = Engine(f"sqlite:///{tmp_path / 'db.sqlite'}", storage=tmp_path / "store")
    worker = engine.worker()
    try:
        assert isinstance(engine.storage, Storage) and engine.storage.root == tmp_path / "store"
        assert worker.storage is engine.storage
    finally:
        worker.close()
        engine.db.dispose()


def test_statemill_run_takes_a_storage_folder(tmp_path):
    (tmp_path / "pass.json").write_text(json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    done = statemill("run", "pass.json", "--storage", str(tmp_path / "store"), "--db", f"sqlite:///{tmp_path}/db",
                     "--input", '{"zero": 0, "no": false, "empty": "", "none": null}', "--json", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "SUCCEEDED"


def test_cli_storage_dir_follows_storage_root(project):
    from statemill.cli.config import storage_dir
    assert storage_dir(None) == str(project / "data" / "buckets")
    assert storage_dir("x") == str(project / "sub" / "x")
