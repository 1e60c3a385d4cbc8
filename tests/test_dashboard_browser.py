"""End to end in a real browser: two short runs trained by the CLI, the dashboard started on them,
the scalar page loaded in headless Chromium. The page must draw one chart per logged tag with both
runs overlaid, holding the logged values; a screenshot goes to test-output/<test name>/.

Chromium and its driver come from Debian (``apt-get install chromium chromium-driver``, done by
``.ci/run``); the test is skipped, saying so, only where they are not installed.
"""
import json
import urllib.parse
import urllib.request

import pytest

from course.dashboard import start

from _helpers import HAS_CHROMIUM, chromium, run_course

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not HAS_CHROMIUM,
    reason="chromium / chromedriver not installed (Debian: apt-get install chromium chromium-driver; "
           ".ci/run does this on CI)")]

RUNS = ("sgd", "adam")
EPOCH_TAGS = {f"epoch/{n}" for n in ("train_loss", "train_acc", "val_loss", "val_acc", "lr")}
TRAIN_TAGS = {"train/loss", "train/lr", "train/grad_norm"}
WAIT = 90  # seconds; every wait below is bounded by this

# The page draws its charts with ECharts on <canvas>, so the tag names (chart titles) are not in
# the DOM. The page's own ECharts module (one instance per URL) reads them back from each chart.
READ_CHARTS = """
const done = arguments[arguments.length - 1];
import('/app/__snowpack__/pkg/echarts.js').then(echarts => {
  done(Array.from(document.querySelectorAll('[_echarts_instance_]')).map(el => {
    const chart = echarts.getInstanceByDom(el);
    const option = chart ? chart.getOption() : {title: [], series: []};
    const box = el.getBoundingClientRect();
    return {title: (option.title || []).map(t => t.text).join(''),
            series: (option.series || []).filter(s => s.name).map(s => [s.name, s.data || []]),
            box: [box.left, box.top, box.width, box.height]};
  }));
}).catch(error => done(String(error)));
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two 2-epoch runs on 512 images (a loss point every 2 batches): about 10 s together."""
    out = tmp_path_factory.mktemp("browser") / "runs"
    for name in RUNS:
        done = run_course("train", "--out_dir", out, "--run_name", name, "--optimizer", name, "--lr", "0.001",
                          "--schedule", "constant", "--train_subset", "512", "--eval_subset", "200",
                          "--num_epochs", "2", "--log_every", "2", "--no-progress")
        assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture
def browser():
    with chromium(wait=WAIT) as driver:
        yield driver


def charts_when(driver, ready):
    """The page's charts once ``ready(charts)`` holds, polled for at most WAIT seconds."""
    from selenium.webdriver.support.ui import WebDriverWait

    state = {}

    def check(d):
        state["charts"] = d.execute_async_script(READ_CHARTS)
        return isinstance(state["charts"], list) and ready(state["charts"])
    WebDriverWait(driver, WAIT, poll_frequency=0.5).until(check, f"charts never got ready: {state}")
    return state["charts"]


def complete(tags):
    """Every tag has a chart in which each run has its whole series (2 raw points at least)."""
    def ready(charts):
        titles = {c["title"]: c for c in charts}
        return tags <= set(titles) and all(
            {name for name, data in titles[t]["series"] if len(data) >= 2} >= {f"runs/{r}/vdl" for r in RUNS}
            for t in tags)
    return ready


def colored_pixels(png_path, box):
    """Pixels in ``box`` (left, top, width, height) that are clearly colored: the curves, not the grey grid."""
    from PIL import Image

    image = Image.open(png_path).convert("RGB")
    left, top, width, height = (int(v) for v in box)
    region = image.crop((left, top, left + width, top + height))
    return sum(1 for r, g, b in region.getdata() if max(r, g, b) - min(r, g, b) > 60)


def test_two_runs_overlay_in_the_scalar_page(runs, browser, out_dir):
    from selenium.webdriver.common.by import By

    with start(runs, port=None, language="en") as dashboard:  # en: no CJK font needed for the screenshot
        browser.get(dashboard.page)  # the address the CLI and start_dashboard print
        charts = charts_when(browser, complete(EPOCH_TAGS))  # the first tag group is open
        assert browser.current_url == dashboard.page  # the scalar page, not another tab
        assert browser.execute_script("return localStorage.getItem('scalar_smoothing')") == "0"
        # Smoothing 0 (the default): each drawn point's smoothed value (index 3) is the logged one (index 2).
        # The losses of the two epochs differ, so VisualDL's own 0.6 would move the second point.
        for chart in charts:
            if chart["title"] == "epoch/train_loss":
                points = [p for _, data in chart["series"] for p in data]
                assert len(points) >= 4 and len({p[2] for p in points}) >= 3, chart
                assert all(p[3] == pytest.approx(p[2], rel=1e-9) for p in points), chart
        body = browser.find_element(By.TAG_NAME, "body").text
        for name in RUNS:
            assert f"runs/{name}/vdl" in body  # the run selector lists both runs
        assert "epoch" in body and "train" in body  # the two tag groups
        browser.save_screenshot(str(out_dir / "scalars_epoch.png"))
        height = browser.execute_script("return window.innerHeight")
        visible = [c for c in charts if c["box"][1] + c["box"][3] <= height]
        assert visible and all(colored_pixels(out_dir / "scalars_epoch.png", c["box"]) > 300 for c in visible), \
            "a chart in the screenshot shows no curves"

        browser.find_element(By.XPATH, "//h3[normalize-space(text())='train']").click()  # open the group
        charts = charts_when(browser, complete(EPOCH_TAGS | TRAIN_TAGS))
        assert {c["title"] for c in charts} == EPOCH_TAGS | TRAIN_TAGS

        loss_chart = next(c for c in charts if c["title"] == "train/loss")
        browser.execute_script("window.scrollTo(0, arguments[0] - 80)", loss_chart["box"][1])
        browser.save_screenshot(str(out_dir / "scalars_train.png"))

        for name in RUNS:
            metrics = json.loads((runs / name / "metrics.json").read_text())
            logged = list(zip(metrics["loss_steps"], metrics["losses"]))
            assert len(logged) == 8  # 2 epochs x 8 batches, a point every 2
            # On the page: every series of this run in the loss chart, raw values (index 2) per step (index 1).
            drawn = {(p[1], p[2]) for run, data in loss_chart["series"] if run == f"runs/{name}/vdl" for p in data}
            assert sorted(drawn) == [(s, pytest.approx(v, rel=1e-6)) for s, v in logged]
            # Through the API the page uses.
            query = urllib.parse.urlencode({"run": f"runs/{name}/vdl", "tag": "train/loss"})
            with urllib.request.urlopen(f"{dashboard.url}/api/scalar/list?{query}", timeout=WAIT) as response:
                points = json.loads(response.read())["data"]
            assert [(p[1], p[2]) for p in points] == [(s, pytest.approx(v, rel=1e-6)) for s, v in logged]

        # A student's own slider setting (the page keeps it in localStorage) survives a reload.
        browser.execute_script("localStorage.setItem('scalar_smoothing', '0.9')")
        browser.get(dashboard.page)
        charts = charts_when(browser, complete(EPOCH_TAGS))
        assert browser.execute_script("return localStorage.getItem('scalar_smoothing')") == "0.9"
        loss = next(c for c in charts if c["title"] == "epoch/train_loss")
        assert any(p[3] != pytest.approx(p[2], rel=1e-3) for _, data in loss["series"] for p in data)
    assert not dashboard.running


def test_a_dashboard_with_another_smoothing_sets_it_again(runs, browser):
    """The page sets the slider when the server's value differs from the one it set last."""
    for smoothing, shown in ((0, "0"), (0.5, "0.5")):
        with start(runs, port=None, language="en", smoothing=smoothing) as dashboard:
            browser.get(dashboard.page)
            charts = charts_when(browser, complete(EPOCH_TAGS))
            assert browser.execute_script("return localStorage.getItem('scalar_smoothing')") == shown
            loss = next(c for c in charts if c["title"] == "epoch/train_loss")
            moved = any(p[3] != pytest.approx(p[2], rel=1e-3) for _, data in loss["series"] for p in data)
            assert moved == (smoothing > 0)
