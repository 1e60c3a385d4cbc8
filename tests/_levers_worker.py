"""Run by tests/test_cpu_levers.py in a fresh process: N training steps of the course CNN, parameters saved.

    COURSE_CPU_LEVERS=0 python tests/_levers_worker.py OUT.npz OPTIMIZER LR STEPS

The CPU levers are chosen by the environment (``COURSE_CPU_LEVERS``) before ``course`` and Paddle
are imported, as a user's process would get them; the weights (seed 0) and the batches (the shuffled
batches of 64 of the first 64 x STEPS training images, seed 0) are the same in every process. Also saves the
per-step losses and the environment variable the MKL lever sets, so the test can say what ran.
"""
import os
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repository root, not tests/

import course  # noqa: E402, F401  (first: sets the MKL lever's environment before Paddle loads)
import numpy as np  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

from course import MNIST, make_loader, make_optimizer, set_seed, use_device  # noqa: E402

out, optimizer_name, lr, steps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
use_device("cpu")
set_seed(0)
model = MNIST()
optimizer = make_optimizer(optimizer_name, lr, model.parameters())
losses = []
for X, y in make_loader("train", 64, seed=0, subset=64 * steps):
    loss = F.cross_entropy(model(X), y)
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()
    losses.append(float(loss))
np.savez(out, losses=np.array(losses), mkl_env=os.environ.get("MKL_DEBUG_CPU_TYPE", ""),
         **{k: v.numpy() for k, v in model.state_dict().items()})
