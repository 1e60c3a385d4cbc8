"""Run directories never collide, even for runs started in the same second."""
from concurrent.futures import ThreadPoolExecutor

from course import Config
from course.run import make_run_dir


def test_same_second_runs_get_different_directories(tmp_path):
    config = Config(out_dir=str(tmp_path))  # default name: time stamp + settings, same within a second
    with ThreadPoolExecutor(8) as pool:
        dirs = list(pool.map(lambda _: make_run_dir(config), range(8)))
    assert len({d.name for d in dirs}) == 8 and all(d.is_dir() for d in dirs)
    named = Config(out_dir=str(tmp_path), run_name="mine")
    assert [make_run_dir(named).name for _ in range(3)] == ["mine", "mine-2", "mine-3"]


def test_run_dir_knows_the_layout_and_resolves_a_directory_or_a_file(tmp_path):
    from course.rundir import RunDir, checkpoint_file

    run = RunDir.create(tmp_path, "r")
    assert run.checkpoint == tmp_path / "r" / "checkpoint.pdckpt" and run.config.name == "config.json"
    assert not run.finished() and run.read_metrics() is None
    run.write_metrics({"test": {"acc": 0.5}})
    assert run.finished() and run.read_metrics() == {"test": {"acc": 0.5}}
    weights = run.weights
    weights.write_bytes(b"")
    assert RunDir.of(run.path) == RunDir.of(weights) == run          # a run directory or a file in it
    assert checkpoint_file(run.path) == run.checkpoint and checkpoint_file(weights) == weights


def test_the_build_steps_of_train_run_work_one_by_one_from_a_notebook():
    from course import fit, make_loss
    from course.callbacks import LRSchedule, NaNGuard, PrintMetrics
    from course.history import History
    from course.run import build_callbacks, build_loaders, build_model, build_optimizer

    config = Config(train_subset=128, eval_subset=100, num_epochs=1, log_every=1, progress=False)
    model = build_model(config)
    train_loader, val_loader, test_loader = build_loaders(config)
    optimizer, scheduler = build_optimizer(config, model, len(train_loader))
    callbacks = build_callbacks(config, is_main=True, scheduler=scheduler)   # no run_dir: writes nothing
    assert [type(c) for c in callbacks] == [History, NaNGuard, LRSchedule, PrintMetrics]
    history = fit(model, train_loader, optimizer, config.num_epochs, val_loader=val_loader,
                  loss_fn=make_loss(config.loss), callbacks=callbacks)
    assert history is callbacks[0] and len(history.epochs) == 1
    assert [type(c) for c in build_callbacks(config, is_main=False)] == [History, NaNGuard]
    _, constant = build_optimizer(config.replace(schedule="constant"), model, 2)
    assert constant is None
