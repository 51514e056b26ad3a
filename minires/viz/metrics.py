"""Reading ``metrics.jsonl``, the training script's log: every line checked, runs joined into series.

Each line is one JSON object, a step record or an epoch record:

    {"run", "time", "global_step", "epoch", "step", "loss"}          loss: the epoch's running mean
    {"run", "time", "global_step", "epoch", "train_loss", "test_accuracy", "lr", "seconds",
     "images_per_second"}

``run`` is new at every start of the training script, ``time`` is Unix seconds and
``global_step`` counts optimizer steps since training began, across resumptions
(epoch_index * steps_per_epoch + step). Records written before these three existed
lack them; their global step is rebuilt as (epoch - 1) * S + step, S the largest step
logged in the file (exact when the logging interval divides the epoch), and a
record that goes back in (epoch, step) starts a new run.

Runs become series, the lines of a plot. A run that starts past epoch 1, or past the
last global step of the series before it, is a resumption (``--resume``) and
continues that series; any other run starts a new series (a fresh run into the same
folder). A resumption from an earlier checkpoint redoes steps: the series' records
from its first global step on are dropped, as TensorBoard's ``purge_step`` does.
"""
import json
import math
from numbers import Integral, Real

RUN_FIELDS = {"run": str, "time": Real, "global_step": Integral}
STEP_FIELDS = {"epoch": Integral, "step": Integral, "loss": Real}
EPOCH_FIELDS = {"epoch": Integral, "train_loss": Real, "test_accuracy": Real, "lr": Real,
                "seconds": Real, "images_per_second": Real}
_TYPE_NAMES = {str: "a string", Real: "a number", Integral: "an integer"}


class MetricsError(ValueError):
    """A metrics file that cannot be read; the message names the file and the line."""


class Series:
    """A run and its resumptions: step and epoch records (dicts) in global-step order."""

    def __init__(self, records):
        self.runs = []
        self.records = []
        self.extend(records)

    def extend(self, records):
        """Append a resumption, dropping the records it redoes."""
        start = records[0]["global_step"]
        self.records = [r for r in self.records if r["global_step"] < start] + list(records)
        if records[0].get("run") not in self.runs:
            self.runs.append(records[0].get("run"))

    @property
    def steps(self):
        return [r for r in self.records if "step" in r]

    @property
    def epochs(self):
        return [r for r in self.records if "train_loss" in r]


def read_metrics(path):
    """The records of a metrics file, checked line by line (blank lines are skipped).

    Returns:
        a list of dicts in file order; records without ``global_step`` get a rebuilt one.
    Raises:
        MetricsError: one sentence naming the file and line, for a file that is missing or
            empty, a line that is not a JSON object, or a record with a field missing or of
            the wrong type.
    """
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as error:
        raise MetricsError(f"{path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise MetricsError(f"{path}: not a text file") from None
    records = [_checked(line, f"{path}, line {number}")
               for number, line in enumerate(lines, start=1) if line.strip()]
    if not records:
        raise MetricsError(f"{path}: holds no records")
    _rebuild_global_steps(records)
    return records


def _checked(line, where):
    """One line as a record, or MetricsError saying what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise MetricsError(f"{where}: not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise MetricsError(f"{where}: a JSON {type(record).__name__}, expected an object")
    if "step" in record:
        fields = STEP_FIELDS
    elif "train_loss" in record:
        fields = EPOCH_FIELDS
    else:
        raise MetricsError(f"{where}: neither a step record (with step and loss) nor an epoch "
                           "record (with train_loss)")
    if any(name in record for name in RUN_FIELDS):      # written since runs were identified
        fields = {**RUN_FIELDS, **fields}
    missing = [name for name in fields if name not in record]
    if missing:
        raise MetricsError(f"{where}: the record lacks {', '.join(missing)}")
    for name, kind in fields.items():
        value = record[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise MetricsError(f"{where}: {name} should be {_TYPE_NAMES[kind]}, got {value!r}")
    return record


def _position(record):
    """Where a record falls in training: (epoch, step); an epoch record after all its steps."""
    return record["epoch"], record.get("step", math.inf)


def _rebuild_global_steps(records):
    old = [r for r in records if "global_step" not in r]
    S = max((r["step"] for r in old if "step" in r), default=1)     # steps per epoch, at least
    for record in old:
        record["global_step"] = (record["epoch"] - 1) * S + record["step"] if "step" in record \
            else record["epoch"] * S


def runs(records):
    """The records grouped by run, in order of first appearance (lists of records)."""
    by_id, groups = {}, []
    for record in records:
        key = record.get("run")
        if key is None:     # an old record: a new run begins where training goes back
            if not groups or groups[-1][0].get("run") is not None or \
                    _position(record) <= _position(groups[-1][-1]):
                groups.append([])
            groups[-1].append(record)
        else:
            if key not in by_id:
                by_id[key] = []
                groups.append(by_id[key])
            by_id[key].append(record)
    return groups


def series(records):
    """The runs joined with their resumptions (see the module docstring): a list of Series."""
    joined = []
    for run in runs(records):
        first = run[0]
        if joined and (first["epoch"] > 1 or
                       first["global_step"] > joined[-1].records[-1]["global_step"]):
            joined[-1].extend(run)
        else:
            joined.append(Series(run))
    return joined
