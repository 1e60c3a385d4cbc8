"""The ablation variants (BatchNorm, raw inputs, squared-error loss) train, save and score as trained."""
import numpy as np
import paddle
import pytest

from course import MNIST, Config, evaluate_checkpoint, make_loader, train_run
from course.hooks import layer_report


def test_batch_norm_variant_normalizes_each_convolution_and_keeps_the_plain_names():
    plain, bn = MNIST(), MNIST(batch_norm=True)
    assert set(plain.state_dict()) < set(bn.state_dict())
    assert {k for k in bn.state_dict() if k.startswith("bn")} == {
        f"bn{i}.{p}" for i in (1, 2) for p in ("weight", "bias", "_mean", "_variance")}
    bn.train()
    x = paddle.randn([16, 1, 28, 28]) * 5 + 3
    out = bn.bn1(bn.conv1(x)).numpy()
    # training mode: every channel of the batch normalized to mean 0, std 1 (gamma=1, beta=0 at start)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-2)
    names = [r.name for r in layer_report(bn, x)]
    assert names.index("conv1") < names.index("bn1") < names.index("conv2") < names.index("bn2")


def test_raw_inputs_are_pixels_0_to_255():
    raw = next(iter(make_loader("test", 100, normalize=False)))[0].numpy()
    assert raw.min() == 0 and raw.max() == 255
    normalized = next(iter(make_loader("test", 100)))[0].numpy()
    assert normalized.min() == -1 and normalized.max() == 1  # the course's (x - 127.5) / 127.5


@pytest.mark.parametrize("overrides", [dict(batch_norm=True), dict(normalize=False), dict(loss="mse")],
                         ids=["batch_norm", "raw_inputs", "mse"])
def test_variant_runs_are_rebuilt_as_trained_when_evaluated(tmp_path, overrides):
    config = Config(train_subset=640, eval_subset=300, num_epochs=1, out_dir=str(tmp_path), progress=False,
                    visualdl=False, **overrides)
    results = train_run(config)
    assert results["config"] == config.to_dict()
    again = evaluate_checkpoint(results["run_dir"], subset=300)
    assert again["acc"] == pytest.approx(results["test"]["acc"])
    assert again["loss"] == pytest.approx(results["test"]["loss"], rel=1e-5)


def test_cli_flags_for_the_variants(tmp_path):
    from course.cli import main
    rc = main(["train", "--batch_norm", "--no-normalize", "--loss", "mse", "--regularizer", "l1",
               "--weight_decay", "1e-5", "--train_subset", "320", "--eval_subset", "200", "--num_epochs", "1",
               "--out_dir", str(tmp_path), "--run_name", "v", "--no-progress", "--no-visualdl"])
    assert rc == 0
    saved = Config.load(tmp_path / "v" / "config.json")
    assert (saved.batch_norm, saved.normalize, saved.loss, saved.regularizer) == (True, False, "mse", "l1")
