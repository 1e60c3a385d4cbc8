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
