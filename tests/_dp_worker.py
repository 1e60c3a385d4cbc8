"""Run by tests/test_distributed.py under ``paddle.distributed.launch``: one ``train_run`` per rank.

    python -m paddle.distributed.launch --nproc_per_node 2 tests/_dp_worker.py OUT '{"batch_size": 64, ...}'

Each rank writes, into OUT, its final parameters (``params.rank<r>.npz``) and the names of
the callbacks it trained with (``callbacks.rank<r>.json``): what a test needs to see that the
ranks agree and that only rank 0 got the callbacks that write.
"""
import json
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repository root, not tests/

import numpy as np  # noqa: E402

from course import Callback, Config, train_run  # noqa: E402
from course.distributed import get_rank  # noqa: E402
from course.tensors import unwrap  # noqa: E402


class Record(Callback):
    def __init__(self, out: Path):
        self.out = out

    def after_fit(self, state):
        rank = get_rank()
        np.savez(self.out / f"params.rank{rank}.npz",
                 **{k: v.numpy() for k, v in unwrap(state.model).state_dict().items()})
        names = sorted(type(c).__name__ for c in state.callbacks)
        (self.out / f"callbacks.rank{rank}.json").write_text(json.dumps(names))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    train_run(Config(**json.loads(sys.argv[2])), extra_callbacks=[Record(out)])
