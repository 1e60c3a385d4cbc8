"""The set-up promises: Paddle is chosen by an extra (never forced), README's commands are real."""
import configparser
import re

from course.device import describe, paddle_distributions

from _helpers import ROOT


def test_paddle_is_not_a_hard_dependency_but_an_extra():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    requires = cfg["options"]["install_requires"]
    assert "paddle" not in requires  # would pull the CPU wheel over a user's paddlepaddle-gpu
    extras = cfg["options.extras_require"]
    assert "paddlepaddle" in extras["cpu"] and "paddlepaddle-gpu" in extras["gpu"]


def test_readme_gives_two_make_commands_that_exist_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_exactly_one_paddle_wheel_here_and_describe_reports_it():
    assert len(paddle_distributions()) == 1
    line = describe("cpu")
    assert "paddle " in line and "device cpu" in line and "WARNING" not in line
