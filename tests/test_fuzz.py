"""Property-based tests: random bytes into the IDX reader and random values into the config parser
produce a result or the package's own error, never a crash or a hang."""
import gzip
import json
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from course import Config, ConfigError, DataError, read_idx
from course.cli import parse, train_config
from course.config import field_names

FAST = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


def idx_header(dims, dtype=0x08):
    return bytes([0, 0, dtype, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims)


def read_bytes(tmp_path, blob):
    path = tmp_path / "f"
    path.write_bytes(blob)
    try:
        array = read_idx(path)
    except DataError as e:
        assert str(path) in str(e)  # every error names the file
        return None
    assert array.dtype == np.uint8
    return array


@FAST
@given(blob=st.binary(max_size=300))
def test_random_bytes(tmp_path, blob):
    read_bytes(tmp_path, blob)


@FAST
@given(blob=st.binary(max_size=300), compress=st.booleans(), cut=st.integers(0, 400))
def test_random_gzip_streams_whole_or_cut(tmp_path, blob, compress, cut):
    data = gzip.compress(blob) if compress else b"\x1f\x8b" + blob
    read_bytes(tmp_path, data[:cut] if cut else data)


@FAST
@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=4), dtype=st.integers(0, 255),
       body=st.binary(max_size=200), gz=st.booleans())
def test_random_headers(tmp_path, dims, dtype, body, gz):
    raw = idx_header(dims, dtype) + body
    array = read_bytes(tmp_path, gzip.compress(raw) if gz else raw)
    if array is not None:
        assert list(array.shape) == dims and array.size == len(body)


values = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                   st.lists(st.integers(), max_size=2))


@FAST
@given(overrides=st.dictionaries(st.sampled_from(field_names() + ["bogus", "learning_rate"]), values, max_size=4))
def test_random_config_values(overrides):
    try:
        config = Config().replace(**overrides)
    except ConfigError:
        return
    assert isinstance(config, Config)


@FAST
@given(flag=st.sampled_from(field_names() + ["resume", "nope"]),
       value=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12))
def test_random_command_lines(flag, value):
    try:
        command, args = parse(["train", f"--{flag}", value])
        assert isinstance(train_config(args), Config)
    except SystemExit as e:
        assert e.code == 2  # argparse's one-line error
    except ConfigError:
        pass


@FAST
@given(content=st.one_of(st.text(max_size=50),
                         st.dictionaries(st.text(max_size=8), values, max_size=3).map(json.dumps)))
def test_random_saved_config_files(tmp_path, content):
    path = tmp_path / "config.json"
    path.write_text(content)
    try:
        Config.load(path)
    except ConfigError:
        pass
