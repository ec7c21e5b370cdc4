"""Fuzz the parsers: whatever they are fed, they answer or raise the project's one-line errors, never a traceback.

Each property runs a bounded number of random examples (new ones every run, no example database), sized so
the whole file takes well under a minute on a 2-core machine. The regression tests pin the inputs fuzzing found.
"""

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from projectkit import ROOT, load_wrapper
from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.evidence.history import History
from swiftdeploy.model.manifest import ManifestError, parse_manifest
from swiftdeploy.judge.metrics import MetricsError, parse, window

MANIFEST = (ROOT / "manifest.yaml").read_text()

fuzz = settings(max_examples=150, deadline=None, derandomize=False, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])


def assert_one_line_error(err: BaseException) -> None:
    """err is an expected failure: a SwiftDeployError of one non-empty line (ManifestError: one per problem)."""
    assert isinstance(err, SwiftDeployError), f"{type(err).__name__}: {err}"
    lines = str(err).splitlines()
    assert lines and all(line.strip() for line in lines), repr(str(err))
    if isinstance(err, ManifestError):
        assert all(line.startswith(f"{err.source}: ") for line in lines), repr(str(err))
    else:
        assert len(lines) == 1, repr(str(err))


def edited(text: str, inserts: st.SearchStrategy) -> st.SearchStrategy:
    """text with a few random edits: characters inserted, deleted or replaced, lines duplicated or dropped."""
    edit = st.tuples(st.sampled_from(["insert", "delete", "replace", "duplicate line", "drop line"]),
                     st.integers(0, len(text)), st.integers(0, 40), inserts)
    return st.lists(edit, min_size=1, max_size=5).map(lambda edits: _apply(text, edits))


def _apply(text: str, edits) -> str:
    for operation, at, length, insert in edits:
        at %= len(text) + 1
        if operation == "insert":
            text = text[:at] + insert + text[at:]
        elif operation == "delete":
            text = text[:at] + text[at + length:]
        elif operation == "replace":
            text = text[:at] + insert + text[at + length:]
        else:
            lines = text.splitlines(keepends=True) or [""]
            line = at % len(lines)
            lines[line:line + 1] = [lines[line]] * 2 if operation == "duplicate line" else []
            text = "".join(lines)
    return text


# ---------------------------------------------------------------- manifest

SECTIONS = ["services", "nginx", "network", "opa", "canary", "project", "volumes", "logs"]
FIELDS = ["name", "image", "port", "version", "mode", "restart_policy", "restart", "log_volume", "canary", "weight",
          "window_seconds", "proxy_timeout", "contact", "driver_type", "volume_name", "logs"]
YAML_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=20),
    st.sampled_from(["stable", "canary", "bridge", "nginx:latest", "1.0.0", "30s", "0s", "3601s", "no",
                     "unless-stopped", "swift-deploy-1-node:latest", "", " ", "a\u2028b", "x\r"]))
YAML_KEYS = st.one_of(st.sampled_from(SECTIONS + FIELDS), st.text(max_size=10), st.integers(), st.none(),
                      st.booleans(), st.floats())
YAML_VALUES = st.recursive(
    YAML_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(YAML_KEYS, children, max_size=5)),
    max_leaves=20)
# Lines YAML treats specially: tags, anchors, complex keys, implicit dates and numbers, unterminated flows.
YAML_LINES = st.sampled_from([
    "services:", "nginx:", "network:", "opa:", "canary:", "port: 80", "image: nginx:latest", "mode: canary",
    "- a", "- - b", "? [a, b]\n: c", "? {a: 1}\n: c", "x: !!set abc", "x: !!set {a, b}", "x: !!bool maybe",
    "x: !!timestamp soon", "x: !!int abc", "x: !!float abc", "x: !!binary ###", "x: !!omap abc",
    "x: !!pairs [a]", "x: !!str", "x: !!map abc", "x: !!seq abc", "x: !!python/name:os.system",
    "x: 2024-13-45", "x: 2024-02-30 25:61:61", "x: 1:2:3", "x: 0b102", "x: 0o9", "x: 0x" + "f" * 3000,
    "x: " + "1" * 4400, "x: -" + "9" * 5000, "x: 1e999", "x: .nan", "x: &a 1", "y: *a", "<<: {a: 1}",
    "%YAML 1.1\n---", "---", "...", "\t", 'x: "\\u2028"', '"a\\rb": 1', '"\\x85": 1', "x: [", "x: {", "}",
    "x: |\n  block", "x: >-\n  folded", "x: 'unterminated", ": :", "[" * 2000, "{a: " * 1000, "- " * 1000,
    "a:\n" + "".join(" " * i + "a:\n" for i in range(1, 600)),
])


def yaml_documents() -> st.SearchStrategy:
    """YAML text from random documents: sections of known keys, and the real manifest with fields replaced."""
    real = yaml.safe_load(MANIFEST)
    documents = st.dictionaries(st.one_of(st.sampled_from(SECTIONS), YAML_KEYS), YAML_VALUES, max_size=6)
    patch = st.tuples(st.sampled_from(SECTIONS), st.sampled_from(FIELDS), st.one_of(st.just("(deleted)"), YAML_VALUES))
    patched = st.lists(patch, min_size=1, max_size=3).map(lambda patches: _patched(real, patches))
    return st.tuples(st.one_of(documents, patched), st.booleans(), st.booleans()).map(
        lambda drawn: yaml.safe_dump(drawn[0], default_flow_style=drawn[1], allow_unicode=drawn[2], sort_keys=False))


def _patched(document: dict, patches) -> dict:
    document = json.loads(json.dumps(document))
    for section, field, value in patches:
        if not isinstance(document.get(section), dict):
            document[section] = {}
        if value == "(deleted)":
            document[section].pop(field, None)
        else:
            document[section][field] = value
    return document


def yaml_fragments() -> st.SearchStrategy:
    line = st.one_of(YAML_LINES, st.text(alphabet=":-?[]{},&*!|>'\"#%@`\t\n abc019", max_size=15))
    indented = st.tuples(st.integers(0, 6), line).map(lambda pair: " " * pair[0] + pair[1])
    return st.lists(indented, max_size=12).map("\n".join)


def check_manifest(raw) -> None:
    try:
        parse_manifest(raw)
    except ManifestError as err:
        assert_one_line_error(err)


@fuzz
@given(st.binary(max_size=2000))
def test_manifest_on_arbitrary_bytes(raw):
    check_manifest(raw)


@fuzz
@given(st.text(max_size=300))
def test_manifest_on_arbitrary_text(text):
    check_manifest(text)


@fuzz
@given(yaml_documents())
def test_manifest_on_yaml_documents(text):
    check_manifest(text)


@fuzz
@given(yaml_fragments())
def test_manifest_on_yaml_fragments(text):
    check_manifest(text)


@fuzz
@given(edited(MANIFEST, st.one_of(YAML_LINES, st.text(max_size=8))))
def test_manifest_on_edits_of_the_real_manifest(text):
    check_manifest(text)


@pytest.mark.parametrize("text, says", [
    (MANIFEST + "? [a, b]\n: c\n", "found unhashable key"),
    (MANIFEST + "1: x\nzz: y\n", "manifest.yaml: 1: unknown key"),  # keys of different types
    (MANIFEST + "x: !!set abc\n", "expected a mapping node, but found scalar"),
    (MANIFEST + "x: !!bool maybe\n", 'cannot read "maybe" as bool'),
    (MANIFEST + "x: !!timestamp soon\n", 'cannot read "soon" as timestamp'),
    (MANIFEST + "x: 2024-13-45\n", 'cannot read "2024-13-45" as timestamp (quote it if it is text)'),
    (MANIFEST.replace("port: 8080", "port: " + "1" * 5000), 'cannot read "1111'),  # more digits than int() takes
    (MANIFEST.replace("port: 8080", "port: 0x" + "f" * 5000), 'integer "0xfff'),  # an int too long to print
    (MANIFEST + '"a\\rb": 1\n"\\u2028": 2\n', 'manifest.yaml: "a\\rb": unknown key'),  # keys with line breaks
    ("[" * 5000, "nested too deeply to read"),
    ("a: " + "{a: " * 3000, "nested too deeply to read"),
    ("\ud800", "not UTF-8 text"),  # a str that has no UTF-8 encoding
], ids=["unhashable key", "mixed key types", "!!set scalar", "!!bool", "!!timestamp", "month 13", "4300+ digits",
        "huge hex", "line break in key", "deep list", "deep mapping", "lone surrogate"])
def test_manifest_inputs_fuzzing_found(text, says):
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert_one_line_error(caught.value)
    assert says in str(caught.value)


# ---------------------------------------------------------------- metrics

def exposition(requests: int, errors: int, slow: int) -> str:
    """The app's metrics as prometheus_client prints them."""
    registry = CollectorRegistry()
    counter = Counter("http_requests_total", "HTTP requests", ["method", "path", "status_code"], registry=registry)
    histogram = Histogram("http_request_duration_seconds", "latency", ["method", "path"], registry=registry,
                          buckets=(0.005, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0))
    Gauge("app_mode", "0 stable, 1 canary", registry=registry).set(1)
    Gauge("chaos_active", "0 none, 1 slow, 2 error", registry=registry).set(2)
    counter.labels("GET", "/", "200").inc(requests)
    counter.labels("GET", "/", "500").inc(errors)
    counter.labels("GET", "/healthz", "200").inc(7)
    for seconds, times in ((0.02, requests), (0.7, slow), (0.3, errors)):
        for _ in range(times):
            histogram.labels("GET", "/").observe(seconds)
    return generate_latest(registry).decode()


BEFORE, AFTER = exposition(100, 2, 3), exposition(160, 5, 9)
METRICS_INSERTS = st.one_of(
    st.sampled_from(["{", "}", "=", ",", '"', "\\", "#", " ", "\n", "\t", 'le="+Inf"', 'le="NaN"', 'le=""', "NaN",
                     "+Inf", "-Inf", "1e309", "-1", 'status_code="503"', 'path="/metrics"', "# TYPE x histogram\n",
                     "# TYPE http_requests_total gauge\n", "# HELP", "# EOF\n", "_bucket", "_count", "_created",
                     "_total", "_sum", "{, = r}", '{le="0.5"}', "0x1p3", "1_0", "\u2028"]),
    st.text(max_size=5))


def check_scrape(text: str, at: float = 0.0):
    try:
        return parse(text, at=at, wall=at)
    except MetricsError as err:
        assert_one_line_error(err)
        return None


@fuzz
@given(st.text(max_size=400))
def test_metrics_on_arbitrary_text(text):
    check_scrape(text)


@fuzz
@given(st.text(alphabet='{}=,"\\# \n\t.+-_eE0123456789abflmnrsux{}', max_size=200))
def test_metrics_on_exposition_alphabet(text):
    check_scrape(text)


@fuzz
@given(edited(BEFORE, METRICS_INSERTS), edited(AFTER, METRICS_INSERTS))
def test_metrics_window_on_edited_scrapes(before_text, after_text):
    before, after = check_scrape(before_text, at=0.0), check_scrape(after_text, at=30.0)
    if before is None or after is None:
        return
    for first, second in ((before, after), (after, before), (before, before)):
        try:
            window(first, second)
        except MetricsError as err:
            assert_one_line_error(err)


@pytest.mark.parametrize("text, line", [("{, = r} 1", 1), ("x 1\n{, = r} 1\n", 2)])
def test_metrics_inputs_fuzzing_found(text, line):
    with pytest.raises(MetricsError, match=rf"^malformed metrics text at line {line} \(.+\): '\{{, = r\}} 1'$"):
        parse(text)


# ---------------------------------------------------------------- history

GOOD_RECORD = b'{"ts": "2026-11-26T12:00:00.000Z", "event": "deploy", "outcome": "ok"}'
HISTORY_LINES = st.one_of(
    st.binary(max_size=60),
    st.sampled_from([GOOD_RECORD, b"{}", b"[]", b"null", b'{"event": 1, "ts": 2}', b'{"ts": 1}', b"\xff\xfe",
                     b"\xef\xbb\xbf" + GOOD_RECORD, b"[" * 100000, b'{"a": ' * 5000,
                     b'{"ts": 1, "event": "x", "n": ' + b"1" * 5000 + b"}", b'{"ts": 1, "event": "x", "n": NaN}',
                     b"\r", b" ", GOOD_RECORD[:30]]))


@fuzz
@given(st.lists(HISTORY_LINES, max_size=8), st.one_of(st.just(b"\n"), st.just(b""), HISTORY_LINES))
def test_history_reads_any_file_and_appends_after_it(lines, tail):
    with tempfile.TemporaryDirectory() as directory:
        history = History(Path(directory) / "history.jsonl")
        history.path.write_bytes(b"\n".join(lines) + tail)
        before = history.read()
        assert all(isinstance(r, dict) and isinstance(r["event"], str) and "ts" in r for r in before)
        record = history.append("fuzz", n=len(before))
        assert history.read() == [*before, record]


@pytest.mark.parametrize("line", [b"[" * 100000, b'{"ts": 1, "event": "x", "n": ' + b"1" * 5000 + b"}"],
                         ids=["nested too deeply", "4300+ digits"])
def test_history_lines_fuzzing_found_are_skipped(tmp_path, line):
    history = History(tmp_path / "history.jsonl")
    history.path.write_bytes(GOOD_RECORD + b"\n" + line + b"\n")
    assert [r["event"] for r in history.read()] == ["deploy"]


# ---------------------------------------------------------------- the ./swiftdeploy wrapper

WRAPPER = load_wrapper()
COMMAND_WORDS = sorted({word for words in WRAPPER.COMMANDS for word in words.split()})
OPTIONS = sorted({option for _, _, options in WRAPPER.COMMANDS.values() for option, _, _ in options})
DOIT_TASKS = {doit[0] for doit, _, _ in WRAPPER.COMMANDS.values()}
VALUES = st.sampled_from(["0.5", "3", "-1", "-0.5", "1e3", "-1e3", "nan", "-nan", "inf", "-Infinity", "1_0", " 2 ",
                          "0x10", "", "abc", "=", "--", "-"])
WORD = st.one_of(
    st.sampled_from(COMMAND_WORDS + OPTIONS + ["help", "-h", "--help", "--", "-", "--x", "-x", "-hx", "--=", "-="]),
    VALUES, st.builds("{}={}".format, st.sampled_from(OPTIONS + ["--help", "-h", "--bogus"]), VALUES),
    st.text(max_size=12))


@settings(fuzz, max_examples=400)
@given(st.lists(WORD, max_size=6))
def test_wrapper_maps_or_refuses_any_words_in_one_line(words):
    try:
        argv = WRAPPER.doit_argv(words)
    except WRAPPER.HelpRequested:
        assert not words or words[0] == "help" or "-h" in words or "--help" in words
    except ValueError as err:
        message = str(err)
        assert message.strip() and len(message.splitlines()) == 1, repr(message)
    else:
        assert argv[0] in DOIT_TASKS and all(isinstance(word, str) for word in argv)
