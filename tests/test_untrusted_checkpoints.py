"""Loading through the package never runs code from a checkpoint; safetensors for sharing."""
import os
import pickle

import numpy as np
import paddle
import pytest

from course import CheckpointError, MNIST, load_checkpoint, load_into
from course.checkpoint import save_checkpoint, save_safetensors


class RunsACommand:
    """What an attacker pickles: unpickling calls os.system(...)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("wrap", ["top level", "inside a state dict", "as a tensor value"])
def test_a_crafted_pickle_is_refused_and_runs_nothing(tmp_path, wrap):
    marker = tmp_path / "pwned"
    payload = RunsACommand(marker)
    obj = {"top level": payload, "inside a state dict": {"fc.weight": payload},
           "as a tensor value": {"fc.weight": ("linear_0.w_0", payload)}}[wrap]
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(CheckpointError, match=r"refused to load: the file asks to import posix.system"):
        load_checkpoint(path)
    assert not marker.exists()
    # The danger is real: plain pickle (what paddle.load uses) runs the command.
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_checkpoints_written_by_paddle_and_by_us_pass_the_allow_list(tmp_path):
    model = MNIST()
    optimizer = paddle.optimizer.Adam(parameters=model.parameters())
    model(paddle.zeros([2, 1, 28, 28])).mean().backward()
    optimizer.step()
    save_checkpoint(tmp_path / "c.pdckpt", model, optimizer, epoch=1, history={"losses": [np.float64(0.5)]})
    paddle.save(model.state_dict(), str(tmp_path / "m.pdparams"))
    for name in ("c.pdckpt", "m.pdparams"):
        other = MNIST()
        load_into(other, load_checkpoint(tmp_path / name))
        np.testing.assert_array_equal(other.fc.weight.numpy(), model.fc.weight.numpy())


def test_safetensors_round_trip_and_it_holds_no_code(tmp_path):
    model = MNIST()
    path = save_safetensors(model, tmp_path / "mnist.safetensors")
    other = MNIST()
    load_into(other, load_checkpoint(path))
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert b"\x80" not in path.read_bytes()[:8]  # a JSON header, not a pickle
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable .safetensors"):
        load_checkpoint(tmp_path / "bad.safetensors")
