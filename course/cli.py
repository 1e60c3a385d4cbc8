"""``python -m course ...``: parse the command line, build a Config, call the library.

    python -m course train [--lr 0.005 --num_epochs 3 ...] [--resume RUN_DIR] [--nproc 2]
    python -m course evaluate --checkpoint RUN_DIR_OR_FILE [--split test]
    python -m course export --checkpoint RUN_DIR_OR_FILE --out mnist.safetensors
    python -m course export --checkpoint RUN_DIR_OR_FILE --format inference --out mnist_infer/model
    python -m course sweep --optimizer sgd,adam --lr 0.001,0.01 --num_epochs 1 --jobs 2
    python -m course lr-find --optimizer adam     # -> runs/<time>-lr-find-adam-bs64/lr_finder.png
    python -m course dashboard [--logdir runs] [--port 8040] [--host 127.0.0.1] [--smoothing 0]
    python -m course homework generate
    python -m course grade 2-8 submissions/*.ipynb --out grades

Every ``train`` flag is a ``Config`` field (``--batch_size`` or ``--batch-size``).
Bad flags or values exit with status 2 and one line on stderr, no traceback.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import warnings
from dataclasses import fields

from pathlib import Path

from .config import Config, resolve_config
from .data import SPLITS
from .errors import ConfigError, CourseError
from .rundir import RunDir, checkpoint_file

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage block on error; we print one line and exit 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def _comma_list(convert):
    """argparse type for a sweep axis: ``0.1,0.01`` -> ``[0.1, 0.01]``."""
    def parse(text):
        return [convert(item) for item in text.split(",") if item.strip()]
    parse.__name__ = f"comma-separated {convert.__name__}"  # argparse quotes it in errors
    return parse


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


_boolean.__name__ = "true/false"


def _add_config_flags(parser: argparse.ArgumentParser, sweep: bool = False, only=None, flags=None) -> None:
    """One flag per ``Config`` field; with ``sweep=True`` each takes comma-separated values.

    ``only``: the fields to add (default: all, with defaults left out of the parsed arguments so
    that we know which flags were given); a command with ``only`` gets each field's ``Config``
    default. ``flags``: another flag name for a field (``{"eval_batch_size": "batch_size"}``).
    """
    defaults = Config()
    for f in fields(Config):
        if only is not None and f.name not in only:
            continue
        flag = (flags or {}).get(f.name, f.name)
        names = [f"--{flag}"] + ([f"--{flag.replace('_', '-')}"] if "_" in flag else [])
        default = getattr(defaults, f.name)
        kwargs = dict(dest=flag, default=argparse.SUPPRESS if only is None else default,
                      help=f"{f.metadata['help']} (default: {default!r})")
        if f.type == "bool" and sweep:
            # --batch_norm (on for every run), --no-batch_norm (off), --batch_norm false,true (an axis)
            parser.add_argument(*names, nargs="?", const=[True], type=_comma_list(_boolean),
                                metavar="BOOL,...", **kwargs)
            parser.add_argument(*[n.replace("--", "--no-", 1) for n in names], dest=flag,
                                action="store_const", const=[False], default=argparse.SUPPRESS,
                                help=argparse.SUPPRESS)
            continue
        if f.type == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            convert = {"int": int, "float": float, "str": str}[f.type]
            kwargs["type"] = _comma_list(convert) if sweep else convert
            kwargs["metavar"] = f.type.upper() + (",..." if sweep else "")
            if "choices" in f.metadata:   # listed in --help (the STR metavar would hide them)
                kwargs["help"] += f"; {'one or more' if sweep else 'one'} of: {', '.join(f.metadata['choices'])}"
                if not sweep:
                    kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(*names, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m course", description="PaddlePaddle MNIST course: train and evaluate.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = sub.add_parser("train", help="train the course CNN, evaluate it, write a run directory",
                           description="Train the course CNN on MNIST. COURSE_SMOKE=1 trains on a small "
                                       "slice for one epoch unless flags say otherwise.")
    _add_config_flags(train)
    train.add_argument("--resume", metavar="RUN_DIR", default=None,
                       help="continue the run in RUN_DIR (or from its checkpoint file) after its last epoch")
    train.add_argument("--nproc", type=int, default=1, metavar="INT",
                       help="data-parallel training in INT processes started by paddle.distributed.launch "
                            "(CPU processes over gloo, or one per GPU); the global batch stays --batch_size; "
                            "per-rank logs in RUN_DIR/logs/workerlog.N (default: 1, no launcher)")
    train.add_argument("--verbose", action="store_true",
                       help="also print the whole config (JSON) and the environment (CPU levers, threads); "
                            "both are in the run directory either way (config.json, environment.txt)")
    # Internal: the directory `--nproc` made for the job, passed on to every launched process.
    train.add_argument("--run_dir", default=None, help=argparse.SUPPRESS)

    sweep = sub.add_parser("sweep", help="train one run per combination of comma-separated values",
                           description="A grid sweep: e.g. --optimizer sgd,momentum,adam --lr 0.001,0.01 "
                                       "trains 6 runs. Flags with one value apply to every run. Started "
                                       "again with the same --sweep_dir, finished runs are skipped.")
    _add_config_flags(sweep, sweep=True)
    sweep.add_argument("--jobs", type=int, default=1, metavar="INT",
                       help="runs at a time, in separate processes (about one CPU core each)")
    sweep.add_argument("--sweep_dir", "--sweep-dir", default=None, metavar="DIR",
                       help="where the runs and the results table go (default: runs/sweep-<time>)")

    finder = sub.add_parser("lr-find", help="learning-rate range test: loss against a rising learning rate",
                            description="Raise the learning rate from --start_lr to --end_lr over "
                                        "--num_steps batches, plot the loss, suggest a rate.")
    _add_config_flags(finder, only=("optimizer", "batch_size", "seed", "out_dir", "run_name"))
    finder.add_argument("--start_lr", "--start-lr", type=float, default=1e-6, metavar="FLOAT")
    finder.add_argument("--end_lr", "--end-lr", type=float, default=1.0, metavar="FLOAT")
    finder.add_argument("--num_steps", "--num-steps", type=int, default=200, metavar="INT")
    finder.add_argument("--out", default=None, metavar="PNG",
                        help="where to save the plot (default: lr_finder.png in a new run directory under "
                             "--out_dir, beside lr_finder.json with the numbers)")

    evaluate = sub.add_parser("evaluate", help="evaluate a saved checkpoint or .pdparams file")
    evaluate.add_argument("--checkpoint", required=True, metavar="PATH",
                          help="a run directory, a .pdckpt checkpoint or a .pdparams state dict")
    evaluate.add_argument("--split", default="test", choices=SPLITS, help="which split to evaluate on")
    _add_config_flags(evaluate, only=("eval_batch_size", "data_dir", "device"),
                      flags={"eval_batch_size": "batch_size"})

    dashboard = sub.add_parser("dashboard", help="serve the VisualDL dashboard of a log directory until Ctrl-C",
                               description="Start VisualDL on --logdir (every run directory below it is one "
                                           "run); bound to 127.0.0.1 unless --host says otherwise.")
    dashboard.add_argument("--logdir", default="runs", metavar="DIR", help="directory holding the runs")
    dashboard.add_argument("--port", type=int, default=8040, metavar="INT")
    dashboard.add_argument("--host", default="127.0.0.1", help="0.0.0.0 exposes the logs to the network")
    dashboard.add_argument("--language", default="zh", choices=("zh", "en"), help="dashboard UI language")
    dashboard.add_argument("--smoothing", type=float, default=0.0, metavar="FLOAT",
                           help="where the curves' smoothing slider starts, 0-0.99 (default 0: the logged "
                                "values; VisualDL's own 0.6 bends per-epoch curves of a few points)")

    export = sub.add_parser("export", help="write a model's weights as .safetensors (safe to share: no code), "
                                           "or the model for Paddle Inference (--format inference)")
    export.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="a run directory, a .pdckpt checkpoint or a .pdparams state dict")
    export.add_argument("--out", required=True, metavar="PATH",
                        help="the .safetensors file to write; for --format inference a path prefix "
                             "(mnist_infer/model -> model.pdmodel or model.json, model.pdiparams)")
    export.add_argument("--format", default="safetensors", choices=("safetensors", "inference"),
                        help="safetensors: the weights only; inference: paddle.jit.save's static graph "
                             "+ weights, for paddle.jit.load and Paddle Inference (default: safetensors)")
    from .homework.grade import add_parser as add_grade_parsers
    add_grade_parsers(sub)   # grade HOMEWORK SUBMISSION... / homework generate
    return parser


def parse(argv=None) -> tuple[str, dict]:
    """``(command, arguments)``; exits with status 2 and one line on a malformed command line."""
    args = vars(build_parser().parse_args(argv))
    return args.pop("command"), args


def train_config(args: dict) -> Config:
    """The validated ``Config`` a ``train`` command line asks for (raises ``ConfigError``).

    With ``--resume`` the run's saved config is the base and explicit flags override it.
    """
    args = dict(args)
    resume = args.pop("resume", None)
    if resume is not None:
        return Config.load(resumable(resume).config).replace(**args)
    return resolve_config(**args)


def resumable(path) -> RunDir:
    """The run directory ``--resume PATH`` names; a ``ConfigError`` saying what is wrong and what to
    pass when there is none (checked before Paddle loads and before anything is written)."""
    path = Path(path)
    fix = ("pass a run directory that `python -m course train` wrote (runs/<name>) or its checkpoint.pdckpt, "
           "or leave --resume out to start a new run.")
    if not path.exists():
        raise ConfigError(f"--resume {path}: no such run directory or file; {fix}")
    run_dir = RunDir.of(path)
    if not run_dir.config.is_file():
        where = "is a directory without" if path.is_dir() else "is in a directory without"
        raise ConfigError(f"--resume {path}: {where} config.json, so not a run directory; {fix}")
    return run_dir


def main(argv=None) -> int:
    # A shell starts background jobs with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt. Restore it so `kill -INT` (or Ctrl-C after `fg`) always stops a run cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Paddle warns on import that it found no ccache (used only to compile custom C++ operators,
    # which this course never does). Filtered here, in the entry point, not by `import course`.
    warnings.filterwarnings("ignore", message="No ccache found")
    command, args = parse(argv)
    try:
        if command in ("grade", "homework"):
            from .homework.grade import command as grade_command
            return grade_command(command, args)
        if command == "dashboard":  # no Paddle needed: answers without its start-up time
            from .dashboard import serve
            return serve(**args)
        # Each command checks its values before it imports Paddle (a few seconds): a bad value
        # answers as fast as a bad flag (tests/test_cli.py).
        if command == "train":
            nproc, run_dir, verbose = args.pop("nproc"), args.pop("run_dir"), args.pop("verbose")
            config = train_config(args)
            if nproc != 1:
                return launch_train(nproc, config, args, verbose)
            from .run import train_run

            results = train_run(config, resume=args["resume"], run_dir=run_dir, verbose=verbose)
            if results["stop_reason"].startswith("interrupted"):
                return EXIT_INTERRUPTED  # results were written; tell scripts the run is incomplete
        elif command == "sweep":
            sweep_command(args)
        elif command == "lr-find":
            lr_find_command(args)
        elif command == "evaluate":
            if args["batch_size"] < 1:
                raise ConfigError(f"batch_size must be at least 1, got {args['batch_size']}.")
            checkpoint_file(args["checkpoint"], must_exist=True)
            from .run import evaluate_checkpoint

            evaluate_checkpoint(args["checkpoint"], args["split"], args["batch_size"], args["data_dir"] or None,
                                args["device"])
        else:
            checkpoint_file(args["checkpoint"], must_exist=True)
            from .checkpoint import load_checkpoint, save_safetensors
            from .run import model_from_checkpoint

            model, config = model_from_checkpoint(load_checkpoint(args["checkpoint"]))
            if args["format"] == "inference":
                from .export import export_inference

                written = export_inference(model, args["out"])
                print(f"wrote {', '.join(map(str, written))} (input: float32 [N, 1, 28, 28], "
                      f"{'scaled to [-1, 1]' if config.normalize else 'raw 0-255 pixels'})")
            else:
                print(f"wrote {save_safetensors(model, args['out'])}")
    except CourseError as e:
        sys.stderr.write(f"python -m course {command}: error: {e}\n")
        return EXIT_USAGE
    return 0


def config_flags(args: dict) -> list[str]:
    """The command-line flags that give ``args`` (parsed ``train`` flags) back: ``--lr 0.01 --no-visualdl``."""
    flags = []
    for name, value in args.items():
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        elif value is not None:
            flags += [f"--{name}", str(value)]
    return flags


def launch_train(nproc: int, config: Config, args: dict, verbose: bool = False) -> int:
    """``train --nproc N``: make the run directory, then run ``paddle.distributed.launch`` on it.

    Each of the N processes runs ``course/worker.py train <the same flags> --run_dir RUN_DIR``;
    the launcher writes their output to ``RUN_DIR/logs/workerlog.<rank>`` and echoes rank 0's.
    """
    if nproc < 1:
        raise ConfigError(f"nproc must be at least 1, got {nproc}.")
    import subprocess

    from . import distributed
    from .run import make_run_dir

    if distributed.get_world_size() > 1:
        raise ConfigError("--nproc starts paddle.distributed.launch; a process it started must not start "
                          "another: leave --nproc out of the launched command.")
    env = distributed.launch_env(nproc, config.device)  # checked before a run directory exists
    resume = args.get("resume")
    run_dir = RunDir.of(resume) if resume else RunDir(make_run_dir(config))
    worker_args = (["train", *config_flags(args)] + ([] if resume else ["--run_dir", str(run_dir)])
                   + (["--verbose"] if verbose else []))
    command = distributed.launch_command(nproc, worker_args, run_dir.logs)
    print(f"{nproc} processes: {' '.join(command)}", flush=True)
    print(f"per-rank logs: {run_dir.logs}/workerlog.<rank>; rank 0's output follows", flush=True)
    launcher = subprocess.Popen(command, env=env)
    try:
        code = launcher.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the launcher too: it stops the workers
        launcher.wait()
        return EXIT_INTERRUPTED
    if code:
        sys.stderr.write(f"python -m course train: error: a training process failed (launcher exit status "
                         f"{code}); see {run_dir.logs}/workerlog.<rank>\n")
        return 1
    return 0


def sweep_command(args: dict) -> None:
    """Lists of two or more values become the grid's axes; single values apply to every run."""
    import time

    from .sweep import grid, run_sweep

    jobs, sweep_dir = args.pop("jobs"), args.pop("sweep_dir")
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}.")
    axes = {k: v for k, v in args.items() if isinstance(v, list) and len(v) > 1}
    fixed = {k: v[0] if isinstance(v, list) else v for k, v in args.items() if k not in axes}
    if any(v == [] for v in args.values()):
        raise ConfigError("every swept flag needs at least one value.")
    base = resolve_config(**fixed)
    sweep_dir = sweep_dir or str(Path(base.out_dir) / time.strftime("sweep-%Y%m%d-%H%M%S"))
    print(f"sweep: {' x '.join(f'{k} {v}' for k, v in axes.items()) or 'one run'} into {sweep_dir}")
    run_sweep(base, grid(**axes), sweep_dir, jobs)


def lr_find_command(args: dict) -> None:
    for name in ("start_lr", "end_lr", "num_steps", "batch_size"):
        if not args[name] > 0:
            raise ConfigError(f"{name} must be positive, got {args[name]}.")
    if args["start_lr"] >= args["end_lr"]:
        raise ConfigError("start_lr must be smaller than end_lr.")
    from .data import make_loader
    from .device import set_seed, use_device
    from .lr_finder import lr_range_test, plot_lr_finder
    from .model import MNIST
    from .optim import make_optimizer

    use_device("auto")
    set_seed(args["seed"])
    loader = make_loader("train50k", args["batch_size"], seed=args["seed"])
    model = MNIST()
    optimizer = make_optimizer(args["optimizer"], args["start_lr"], model.parameters())  # the test sets its rate
    result = lr_range_test(model, loader, optimizer, args["start_lr"], args["end_lr"], args["num_steps"])
    print(f"{len(result.lrs)} steps ({result.stop_reason}); lowest smoothed loss at lr {result.min_loss_lr:.3g}")
    print(f"suggested learning rate for {args['optimizer']}: {result.suggestion:.3g}")
    if args["out"] is not None:
        print(f"plot: {plot_lr_finder(result, path=args['out'])}")
        return
    # Like a training run: a directory of its own under --out_dir, never the current folder.
    name = args["run_name"] or f"{time.strftime('%Y%m%d-%H%M%S')}-lr-find-{args['optimizer']}-bs{args['batch_size']}"
    run_dir = RunDir.create(args["out_dir"], name)
    settings = {k: args[k] for k in ("optimizer", "batch_size", "seed", "start_lr", "end_lr", "num_steps")}
    run_dir.lr_finder_json.write_text(json.dumps({
        "settings": settings, "stop_reason": result.stop_reason, "suggestion": result.suggestion,
        "min_loss_lr": result.min_loss_lr, "lrs": result.lrs, "losses": result.losses,
        "smoothed": result.smoothed}, indent=1), encoding="utf-8")
    plot_lr_finder(result, path=run_dir.lr_finder_plot)
    print(f"plot: {run_dir.lr_finder_plot}; numbers: {run_dir.lr_finder_json}")
