"""The from-scratch optimizers agree with paddle.optimizer step for step.

Both sides start from the same parameters and see the same gradients. The main test
runs in float64 on a quadratic loss whose gradient depends on the parameters (so an
early mistake would grow, not hide) and demands agreement to ~1e-10. The settings
include large epsilons and unusual betas on purpose: they pin down conventions such as
where epsilon goes, which would agree to 1e-6 anyway with the tiny defaults.
"""
import numpy as np
import paddle
import pytest

from course import compat
from course.scratch import SGD, AdaGrad, Adam, Momentum, RAdam, RMSProp

STEPS = 30
SHAPES = {"w": (3, 4), "b": (4,)}

# Paddle hands these hyper-parameters to its C++ kernels as float32 attributes even for
# float64 parameters (measured: left unrounded, float64 runs differ by 1e-7..1e-5), so the
# float64 comparison gives the scratch side the same float32-rounded values.
FLOAT32_ATTRS = {Momentum: ("momentum",), AdaGrad: ("epsilon",), RMSProp: ("rho", "epsilon", "momentum"),
                 RAdam: ("beta1", "beta2", "epsilon")}
PADDLE_NAME = {AdaGrad: "Adagrad"}

CASES = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.02)),
    (Momentum, dict(lr=0.05)),
    (Momentum, dict(lr=0.1, momentum=0.5)),
    (Momentum, dict(lr=0.02, momentum=0.95, use_nesterov=True)),
    (AdaGrad, dict(lr=0.5)),
    (AdaGrad, dict(lr=0.3, epsilon=0.3, initial_accumulator_value=0.1)),
    (RMSProp, dict(lr=0.01)),
    (RMSProp, dict(lr=0.01, rho=0.9, epsilon=0.3)),
    (RMSProp, dict(lr=0.005, momentum=0.9, centered=True)),
    (RMSProp, dict(lr=0.01, rho=0.8, epsilon=0.05, momentum=0.3, centered=True)),
    (Adam, dict(lr=0.05)),
    (Adam, dict(lr=0.1, beta1=0.5, beta2=0.9, epsilon=0.3)),
    (RAdam, dict(lr=0.05)),  # beta2 = 0.999: steps 1-5 un-rectified, 6-30 rectified
    (RAdam, dict(lr=0.1, beta1=0.8, beta2=0.95, epsilon=0.3)),
]


def _ids(case):
    cls, kw = case
    return cls.__name__ + "-" + "-".join(f"{k}{v}" for k, v in kw.items())


NO_RADAM = pytest.mark.skipif(not compat.has("radam"), reason=f"paddle.optimizer.RAdam needs Paddle 3.0 or "
                              f"later; this is Paddle {paddle.__version__}")


def _params(cases):
    """``cases`` for parametrize, RAdam's skipped (with the reason) on a Paddle without it."""
    return [pytest.param((cls, kw), marks=NO_RADAM, id=_ids((cls, kw))) if cls is RAdam else
            pytest.param((cls, kw), id=_ids((cls, kw))) for cls, kw in cases]


def _problem(dtype, seed=0):
    """Start values, a positive curvature per entry, and a random linear term per step."""
    rng = np.random.default_rng(seed)
    start = {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}
    curv = {k: rng.uniform(0.5, 3.0, size=s).astype(dtype) for k, s in SHAPES.items()}
    lin = [{k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()} for _ in range(STEPS)]
    return start, curv, lin


def _grad(params, curv, lin_t, feedback):
    # loss = sum(0.5 * curv * p^2 + lin_t * p)  ->  grad = curv * p + lin_t;  without feedback: lin_t
    return {k: (curv[k] * params[k] if feedback else 0) + lin_t[k] for k in params}


def run_paddle(make_opt, dtype, feedback=True, scheduler=None):
    start, curv, lin = _problem(dtype)
    params = {k: paddle.create_parameter(list(v.shape), dtype, default_initializer=paddle.nn.initializer.Assign(v))
              for k, v in start.items()}
    opt = make_opt(list(params.values()))
    path = []
    for lin_t in lin:
        loss = sum(((0.5 * paddle.to_tensor(curv[k]) * p if feedback else 0) * p
                    + paddle.to_tensor(lin_t[k]) * p).sum() for k, p in params.items())
        loss.backward()
        opt.step()
        opt.clear_grad()
        if scheduler is not None:
            scheduler.step()
        path.append({k: p.numpy().copy() for k, p in params.items()})
    return path


def run_scratch(opt, dtype, feedback=True):
    start, curv, lin = _problem(dtype)
    params = {k: v.copy() for k, v in start.items()}
    path = []
    for lin_t in lin:
        opt.step(params, _grad(params, curv, lin_t, feedback))
        path.append({k: v.copy() for k, v in params.items()})
    return path


def assert_same_path(ours, theirs, rtol, atol):
    assert len(ours) == len(theirs) == STEPS
    for t, (a, b) in enumerate(zip(ours, theirs), start=1):
        for k in SHAPES:
            np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=f"step {t}, parameter {k}")


def paddle_factory(cls, kw):
    kw = dict(kw)
    lr = kw.pop("lr")
    paddle_cls = getattr(paddle.optimizer, PADDLE_NAME.get(cls, cls.__name__))
    return lambda ps: paddle_cls(learning_rate=lr, parameters=ps, **kw)


@pytest.mark.parametrize("case", _params(CASES))
def test_matches_paddle_float64(case):
    cls, kw = case
    ours_kw = dict(kw)
    for k in FLOAT32_ATTRS.get(cls, ()):  # defaults too: the constructor stores them, so read them back
        ours_kw[k] = float(np.float32(kw.get(k, getattr(cls(kw["lr"]), k))))
    theirs = run_paddle(paddle_factory(cls, kw), "float64")
    ours = run_scratch(cls(**ours_kw), "float64")
    assert_same_path(ours, theirs, rtol=1e-10, atol=1e-12)
    # the optimizer moved the parameters: a do-nothing step would not be a match
    assert not np.allclose(theirs[-1]["w"], _problem("float64")[0]["w"])


@pytest.mark.parametrize("case", _params([(cls, kw) for cls, kw in CASES if list(kw) == ["lr"]]))
def test_matches_paddle_float32_defaults(case):
    """float32 with the defaults as given (no rounding tricks); fixed gradients, so the
    last-bit differences of float32 arithmetic are not amplified by the dynamics."""
    cls, kw = case
    theirs = run_paddle(paddle_factory(cls, kw), "float32", feedback=False)
    ours = run_scratch(cls(**kw), "float32", feedback=False)
    assert ours[0]["w"].dtype == np.float32
    assert_same_path(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lr, decay", [(0.1, 0.5), (0.2, 0.05), (0.05, 2.0)])
def test_sgd_decay_matches_inverse_time_decay(lr, decay):
    scheduler = paddle.optimizer.lr.InverseTimeDecay(learning_rate=lr, gamma=decay)
    theirs = run_paddle(lambda ps: paddle.optimizer.SGD(scheduler, parameters=ps), "float64", scheduler=scheduler)
    ours = run_scratch(SGD(lr, decay=decay), "float64")
    assert_same_path(ours, theirs, rtol=1e-10, atol=1e-12)
    # and the decay matters: without it the path is different
    assert not np.allclose(run_scratch(SGD(lr), "float64")[-1]["w"], theirs[-1]["w"])


def test_sgd_decay_learning_rates():
    """lr_k = lr / (1 + decay * k), k = steps already taken: one parameter, gradient 1."""
    opt, p = SGD(1.0, decay=1.0), {"x": np.zeros(1)}
    moves = []
    for _ in range(4):
        before = p["x"].copy()
        opt.step(p, {"x": np.ones(1)})
        moves.append(float(before[0] - p["x"][0]))
    np.testing.assert_allclose(moves, [1, 1 / 2, 1 / 3, 1 / 4])


def test_constructor_stores_arguments_and_state_ends_in_underscore():
    opt = RMSProp(0.01, centered=True)
    assert vars(opt) == {"lr": 0.01, "rho": 0.95, "epsilon": 1e-6, "momentum": 0.0, "centered": True}
    params = {"w": np.ones(3)}
    same_array = params["w"]
    opt.step(params, {"w": np.full(3, 2.0)})
    assert params["w"] is same_array and not np.allclose(same_array, 1.0)  # updated in place
    learned = {k for k in vars(opt) if k not in ("lr", "rho", "epsilon", "momentum", "centered")}
    assert learned == {"t_", "mean_sq_", "mean_grad_", "velocity_"}
    assert opt.t_ == 1 and set(opt.mean_sq_) == {"w"}
    assert repr(opt) == "RMSProp(lr=0.01, rho=0.95, epsilon=1e-06, momentum=0.0, centered=True)"


def test_bad_inputs_are_reported():
    with pytest.raises(KeyError, match="no gradient for parameter"):
        Adam(0.1).step({"w": np.ones(2), "b": np.ones(1)}, {"w": np.ones(2)})
    with pytest.raises(TypeError, match="must be a float array"):
        SGD(0.1).step({"w": np.array([1, 2])}, {"w": np.array([1, 1])})
