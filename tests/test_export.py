"""Export for Paddle Inference on both Paddle lines: paddle.jit.save, paddle.jit.load, Paddle Inference,
the CLI's ``export --format inference``, and ``paddle.summary`` / eager input errors still working."""

import numpy as np
import paddle
import pytest

from course import MNIST, Config, set_seed, train_run
from course.export import export_inference, input_spec, load_inference

from _helpers import course_env, run_course


def _images(n=7, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).uniform(-1, 1, (n, 1, 28, 28)).astype("float32"))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_jit_save_reload_predicts_what_the_dygraph_model_predicts(tmp_path, batch_norm):
    set_seed(0)
    model = MNIST(batch_norm=batch_norm)
    model.train()
    if batch_norm:  # running statistics that differ from a fresh layer's, so eval mode matters
        model(_images(64, seed=1))
    written = export_inference(model, tmp_path / "model")
    assert model.training  # export put it in eval mode and back
    names = {p.name for p in written}
    assert "model.pdiparams" in names and names & {"model.pdmodel", "model.json"}, names
    model.eval()
    loaded = load_inference(tmp_path / "model")
    for n in (1, 7):  # the batch size is free
        x = _images(n)
        np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_paddle_jit_save_directly_with_the_documented_input_spec(tmp_path):
    model = MNIST()
    model.eval()
    paddle.jit.save(model, str(tmp_path / "direct"), input_spec=input_spec())
    x = _images(3)
    np.testing.assert_allclose(paddle.jit.load(str(tmp_path / "direct"))(x).numpy(), model(x).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_a_wrong_input_spec_is_a_clear_error_while_tracing(tmp_path):
    from paddle.static import InputSpec

    with pytest.raises(Exception, match=r"MNIST expects images of shape \[N, 1, 28, 28\], got \[-1, 784\]"):
        paddle.jit.save(MNIST(), str(tmp_path / "bad"), input_spec=[InputSpec([None, 784], "float32")])


def test_paddle_inference_serves_the_exported_files(tmp_path):
    from paddle import inference

    model = MNIST()
    model.eval()
    written = {p.suffix: p for p in export_inference(model, tmp_path / "model")}
    program = written.get(".pdmodel") or written[".json"]
    config = inference.Config(str(program), str(written[".pdiparams"]))
    config.disable_gpu()
    predictor = inference.create_predictor(config)
    x = _images(4).numpy()
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(x.shape))
    handle.copy_from_cpu(x)
    predictor.run()
    out = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    np.testing.assert_allclose(out, model(paddle.to_tensor(x)).numpy(), rtol=1e-5, atol=1e-5)


def test_eager_input_errors_and_paddle_summary_still_work():
    model = MNIST()
    with pytest.raises(TypeError, match="wrap it with paddle.to_tensor"):
        model(np.zeros((1, 1, 28, 28), "float32"))
    with pytest.raises(ValueError, match=r"got \[2, 784\] float32"):
        model(paddle.zeros([2, 784]))
    info = paddle.summary(MNIST(), (1, 1, 28, 28))
    assert info["total_params"] == 20 * 25 + 20 + 20 * 20 * 25 + 20 + 980 * 10 + 10


@pytest.mark.slow
def test_cli_export_inference_from_a_run(tmp_path):
    run = train_run(Config(train_subset=128, eval_subset=64, num_epochs=1, progress=False, visualdl=False,
                           out_dir=str(tmp_path / "runs"), run_name="r"))
    done = run_course("export", "--checkpoint", run["run_dir"], "--format", "inference",
                      "--out", tmp_path / "infer" / "model", env=course_env(OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model.pdiparams" in done.stdout and "scaled to [-1, 1]" in done.stdout
    from course import load_checkpoint
    from course.run import model_from_checkpoint

    model, _ = model_from_checkpoint(load_checkpoint(run["run_dir"]))
    model.eval()
    x = _images(5)
    np.testing.assert_allclose(load_inference(tmp_path / "infer" / "model")(x).numpy(), model(x).numpy(),
                               rtol=1e-5, atol=1e-5)
