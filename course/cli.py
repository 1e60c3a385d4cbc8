"""``python -m course ...``: parse the command line, build a Config, call the library.

    python -m course train [--lr 0.005 --num_epochs 3 ...] [--resume RUN_DIR]
    python -m course evaluate --checkpoint RUN_DIR_OR_FILE [--split test]
    python -m course export --checkpoint RUN_DIR_OR_FILE --out mnist.safetensors

Every ``train`` flag is a ``Config`` field (``--batch_size`` or ``--batch-size``).
Bad flags or values exit with status 2 and one line on stderr, no traceback.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from pathlib import Path

from .config import Config, resolve_config
from .data import SPLITS
from .errors import ConfigError, CourseError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage block on error; we print one line and exit 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    defaults = Config()
    for f in fields(Config):
        names = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        default = getattr(defaults, f.name)
        kwargs = dict(dest=f.name, default=argparse.SUPPRESS,  # SUPPRESS: we know which flags were given
                      help=f"{f.metadata['help']} (default: {default!r})")
        if f.type == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = {"int": int, "float": float, "str": str}[f.type]
            kwargs["metavar"] = f.type.upper()
            if "choices" in f.metadata:
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

    evaluate = sub.add_parser("evaluate", help="evaluate a saved checkpoint or .pdparams file")
    evaluate.add_argument("--checkpoint", required=True, metavar="PATH",
                          help="a run directory, a .pdckpt checkpoint or a .pdparams state dict")
    evaluate.add_argument("--split", default="test", choices=SPLITS, help="which split to evaluate on")
    evaluate.add_argument("--batch_size", "--batch-size", type=int, default=1000, metavar="INT")
    evaluate.add_argument("--data_dir", "--data-dir", default=None, metavar="DIR",
                          help="directory with the MNIST IDX files (default: the embedded copy)")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, gpu or gpu:N")

    export = sub.add_parser("export", help="write a model's weights as .safetensors (safe to share: no code)")
    export.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="a run directory, a .pdckpt checkpoint or a .pdparams state dict")
    export.add_argument("--out", required=True, metavar="FILE", help="the .safetensors file to write")
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
        return Config.load(Path(resume if Path(resume).is_dir() else Path(resume).parent) / "config.json",
                           ).replace(**args)
    return resolve_config(**args)


def main(argv=None) -> int:
    command, args = parse(argv)
    try:
        from .run import evaluate_checkpoint, train_run  # imports paddle: after argument checks

        if command == "train":
            results = train_run(train_config(args), resume=args["resume"])
            if results["stop_reason"].startswith("interrupted"):
                return EXIT_INTERRUPTED  # results were written; tell scripts the run is incomplete
        elif command == "evaluate":
            if args["batch_size"] < 1:
                raise ConfigError(f"batch_size must be at least 1, got {args['batch_size']}.")
            evaluate_checkpoint(args["checkpoint"], args["split"], args["batch_size"], args["data_dir"],
                                args["device"])
        else:
            from .checkpoint import load_checkpoint, load_into, save_safetensors
            from .model import MNIST

            model = MNIST()
            load_into(model, load_checkpoint(args["checkpoint"]))
            print(f"wrote {save_safetensors(model, args['out'])}")
    except CourseError as e:
        sys.stderr.write(f"python -m course {command}: error: {e}\n")
        return EXIT_USAGE
    return 0
