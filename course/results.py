"""A notebook's key results: the numbers its conclusions rest on, declared where they are computed.

    from course.results import record
    record("best_lr", best_lr, note="验证准确率最高的学习率")

In a plain Jupyter session ``record`` prints one line (``[结果] best_lr = 0.1  验证准确率最高的学习率``)
and returns the value. Under ``make notebooks`` (``scripts/run_notebooks.py``) the environment variable
``COURSE_RESULTS_FILE`` names a file, and each call also appends one JSON line ``{"key", "value", "note"}``
to it; after a full-mode run the script gathers those lines into ``docs/results.json`` and
``docs/results.md`` and writes each value into the notebook's prose wherever it says
``<!-- result:best_lr --><!-- /result -->`` (``stamp_results`` below). ``tests/test_prose_numbers.py``
accepts a prose number that is one of the notebook's recorded results.

Values are what JSON holds and a reader can quote: a number (Python, NumPy or 0-D Paddle scalar; round it
yourself to the digits the prose should show), a string (a verdict, an optimizer's name), a bool, or a
list of those (a ranking). The value is written into prose exactly as ``format_value`` prints it.

Used by the chapter notebooks (2.6.x, 2.8.x) and ``scripts/run_notebooks.py``.
"""
import json
import os
import re

ENV = "COURSE_RESULTS_FILE"
KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# <!-- result:best_lr -->0.1<!-- /result -->: the value between the two comments is written by the runner
STAMP = re.compile(r"(<!-- result:([A-Za-z][A-Za-z0-9_]*) -->)(.*?)(<!-- /result -->)", re.S)


def _plain(value):
    """``value`` as a JSON value: NumPy scalars and 0-D tensors become Python numbers."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):  # numpy scalar or 0-D array / tensor; .item() refuses anything with more elements
        try:
            return _plain(value.item())
        except (ValueError, RuntimeError) as error:
            raise TypeError(f"record() takes one number, not an array of shape "
                            f"{getattr(value, 'shape', '?')}") from error
    raise TypeError(f"record() takes a number, a string, a bool or a list of those, not {type(value).__name__}")


def format_value(value) -> str:
    """The text a recorded value is shown as, in the printed line and in the notebook's prose."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float: round before recording
    if isinstance(value, list):
        return "、".join(format_value(v) for v in value)
    return str(value)


def record(key: str, value, note: str = ""):
    """Declare one key result of the notebook; print it and, under ``make notebooks``, write it down.

    Parameters
    ----------
    key : str
        A name for the result, unique within the notebook (letters, digits, ``_``; e.g. ``best_lr``).
        Recording a key again replaces its value.
    value : number, str, bool or list of those
        The result. Round a float to the digits the prose should quote.
    note : str
        What the number is, in a few words (shown in ``docs/results.md``).

    Returns
    -------
    The value as recorded (a Python number, string, bool or list).
    """
    if not isinstance(key, str) or not KEY.match(key):
        raise ValueError(f"a result key is letters, digits and _, starting with a letter; got {key!r}")
    if not isinstance(note, str):
        raise TypeError(f"note must be a string, got {type(note).__name__}")
    value = _plain(value)
    if isinstance(value, float) and value != value:
        raise ValueError(f"result {key!r} is NaN: record what was measured, or a string that says it diverged")
    print(f"[结果] {key} = {format_value(value)}" + (f"  {note}" if note else ""))
    path = os.environ.get(ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "value": value, "note": note}, ensure_ascii=False) + "\n")
    return value


def read_recorded(path) -> dict:
    """``{key: {"value", "note"}}`` from a results file written by ``record``, a later line replacing an
    earlier one of the same key; ``{}`` when the file does not exist."""
    found = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return found
    for line in lines:
        if line.strip():
            item = json.loads(line)
            found[item["key"]] = {"value": item["value"], "note": item.get("note", "")}
    return found


def read_record(path) -> dict:
    """The results record ``make notebooks`` writes (docs/results.json) as ``{notebook key: {"mode", "date",
    "cpu", "results": {key: {"value", "note"}}}}``; ``{}`` before the first full-mode run."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["notebooks"]
    except FileNotFoundError:
        return {}


def recorded_values(entry: dict) -> dict:
    """``{key: value}`` of one notebook's entry in the record (what its stamps show)."""
    return {key: item["value"] for key, item in entry.get("results", {}).items()}


def stamp_results(text: str, values: dict) -> str:
    """``text`` with each ``<!-- result:KEY -->…<!-- /result -->`` holding ``format_value(values[KEY])``;
    a key with no recorded value is left as it is."""
    def fill(match):
        key = match.group(2)
        if key not in values:
            return match.group(0)
        return match.group(1) + format_value(values[key]) + match.group(4)
    return STAMP.sub(fill, text)


def stamped(text: str) -> dict:
    """``{key: text between the comments}`` for every result stamp in ``text``."""
    return {m.group(2): m.group(3) for m in STAMP.finditer(text)}
