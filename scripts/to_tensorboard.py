#!/usr/bin/env python3
"""A run's curves for TensorBoard: reads RUN/metrics.jsonl (one line a step, one a
validation) and writes them as TensorBoard event files into RUN/tensorboard/, replacing
what an earlier conversion wrote there. Needs the `tensorboard` package (PyPI), which also
shows them:

    python3 scripts/to_tensorboard.py store/runs/bears-pre [store/runs/bears-paper ...]
    tensorboard --logdir store/runs

Scalars: `train/<loss>`, `train/lr`, `train/images_per_s` and `train/loader_ms` at the
run's step; `val/<score>` (ciede2000, psnr, colorfulness_ratio) at the step the epoch
ended on, so both share one axis.
"""
import json
import os
import shutil
import sys

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter


def scalar(tag, value, step):
    return Event(step=step, summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]))


def convert(run):
    out = os.path.join(run, "tensorboard")
    shutil.rmtree(out, ignore_errors=True)
    writer = EventFileWriter(out)
    step, events = 0, 0
    with open(os.path.join(run, "metrics.jsonl")) as lines:
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{run}/metrics.jsonl: line {number}: {e}")
            if "val" in record:
                values = {f"val/{k}": v for k, v in record["val"].items() if k != "images"}
            else:
                step = record["step"]
                values = {f"train/{k}": v for k, v in record.items()
                          if k not in ("step", "epoch", "phase") and isinstance(v, (int, float))}
            for tag, value in sorted(values.items()):
                writer.add_event(scalar(tag, float(value), step))
                events += 1
    writer.close()
    print(f"{run}: {events} scalars into {out}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for run in sys.argv[1:]:
        convert(run)
