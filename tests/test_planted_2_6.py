"""The measurements notebook 2.6.2 uses to correct its sources fail on the sources' versions.

Each notebook assert checks the real rule (``course.scratch``); here the same measurement is run on a
planted optimizer that follows the source's wrong reading, and must come out the other way. So an assert
that "cannot fail" would show up here as a planted optimizer that passes it.
"""
import numpy as np

from course import scratch


def moves(opt, grads):
    """Parameter change at each step of a one-number parameter fed the given gradients."""
    param, out = {"w": np.zeros(1)}, []
    for g in grads:
        before = param["w"][0]
        opt.step(param, {"w": np.array([float(g)])})
        out.append(param["w"][0] - before)
    return np.array(out)


def decay_reaches_update(opt):   # 2.6.2, SGD cell: with gradient 1 the change is the rate used
    return np.allclose(-moves(opt, [1.0] * 21), [1 / (1 + 0.1 * k) for k in range(21)])


def test_decay_measurement_catches_a_decay_that_never_reaches_the_update():
    class DecayNotUsed(scratch.SGD):   # nnfs: the decayed rate is computed, the initial one updates
        def _update(self, name, param, grad):
            _ = self.lr / (1.0 + self.decay * (self.t_ - 1))
            return param - self.lr * grad

    assert decay_reaches_update(scratch.SGD(1.0, decay=0.1))
    assert not decay_reaches_update(DecayNotUsed(1.0, decay=0.1))


def adam_checks(cls):   # 2.6.2, Adam cell: the step's scale, and its direction after the gradient flips
    scale_free = np.allclose(moves(cls(0.1), [0.001] * 10), moves(cls(0.1), [1000.0] * 10), rtol=1e-3)
    keeps_going = bool(np.all(moves(cls(0.1), [1.0] * 10 + [-1.0] * 5)[10:13] < 0))
    return scale_free, keeps_going


def test_adam_measurements_tell_which_moment_does_what():
    class SquaresPlayNoPart(scratch.Adam):   # the second moment does not set the step size
        def _update(self, name, param, grad):
            m, _ = self._moments(name, param, grad)
            return param - self.lr * m / (1 - self.beta1 ** self.t_)

    class MeanPlaysNoPart(scratch.Adam):     # the first moment does not set the direction
        def _update(self, name, param, grad):
            _, v = self._moments(name, param, grad)
            return param - self.lr * grad / (np.sqrt(v / (1 - self.beta2 ** self.t_)) + self.epsilon)

    assert adam_checks(scratch.Adam) == (True, True)
    assert adam_checks(SquaresPlayNoPart) == (False, True)
    assert adam_checks(MeanPlaysNoPart) == (True, False)


def steps_to_forget(opt):   # 2.6.2, RMSProp cell
    param = {"w": np.zeros(1)}
    for _ in range(200):
        opt.step(param, {"w": np.ones(1)})
    steady, steps = opt.mean_sq_["w"][0], 0
    while opt.mean_sq_["w"][0] > 0.01 * steady:
        opt.step(param, {"w": np.zeros(1)})
        steps += 1
    return steps


def test_rmsprop_measurement_catches_rho_read_the_other_way():
    class RhoInverted(scratch.RMSProp):      # Li Hongyi notes: "the smaller alpha, the more history"
        def _update(self, name, param, grad):
            r = self._state("mean_sq_", name, param)
            r[...] = (1 - self.rho) * r + self.rho * grad * grad
            return param - self.lr * grad / np.sqrt(r + self.epsilon)

    assert steps_to_forget(scratch.RMSProp(0.01, rho=0.95)) > 5 * steps_to_forget(scratch.RMSProp(0.01, rho=0.5))
    assert not steps_to_forget(RhoInverted(0.01, rho=0.95)) > 5 * steps_to_forget(RhoInverted(0.01, rho=0.5))


def first_steps_alike(make):   # 2.6.2, section 3: a large and a small gradient move the first step alike
    large, small = abs(moves(make(), [1000.0])[0]), abs(moves(make(), [0.001])[0])
    return 0.95 < large / small < 1.05


def test_adagrad_measurement_catches_the_course_reading():
    """Course 2.6.2 reads AdaGrad as taking big steps where gradients are big (far from the optimum): a step
    that grows with the gradient, as SGD's does. The notebook's measurement tells the two apart."""
    assert first_steps_alike(lambda: scratch.AdaGrad(0.1))
    assert not first_steps_alike(lambda: scratch.SGD(0.1))
