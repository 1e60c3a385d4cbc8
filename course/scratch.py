"""Optimizers from scratch in NumPy, one update rule per class, matching ``paddle.optimizer``.

Each class does what its Paddle namesake does, step for step, with Paddle's own
conventions (checked against Paddle 3.3.1 in ``tests/test_scratch.py``):

- ``SGD``: ``paddle.optimizer.SGD``; ``decay`` gives lr / (1 + decay * k), Paddle's ``InverseTimeDecay``
- ``Momentum``: v = mu * v + g, a sum (no ``1 - mu`` damping)
- ``AdaGrad``: ``Adagrad``; eps *outside* the square root
- ``RMSProp``: eps *inside* the square root; rho defaults to 0.95
- ``Adam``: eps is added to the bias-corrected sqrt(v)
- ``RAdam``: rectified Adam step only once rho_t > 5, momentum SGD before

Every optimizer has one method, ``step(params, grads)``: two dicts of NumPy
arrays keyed by parameter name, the parameters updated in place. A parameter's
running state (velocity, squared-gradient average, ...) lives in a dict attribute
ending in ``_`` under the same name, created on the first step, so you can print it.

Comparing with Paddle in float64? Paddle keeps some hyper-parameters as float32 even
for float64 parameters (Momentum's ``momentum``; RMSProp's ``rho``, ``epsilon`` and
``momentum``; Adagrad's ``epsilon``; RAdam's ``beta1``, ``beta2`` and ``epsilon``), so pass
``float(np.float32(x))`` here to agree to the last digit. The learning rate and Adam's
settings stay float64.
"""
from __future__ import annotations

import math

import numpy as np


class Optimizer:
    """Shared bookkeeping: count steps, keep per-parameter state, write updates in place.

    Parameters
    ----------
    lr : float
        The learning rate. Required: choosing it is the point of the lesson.
    """

    def __init__(self, lr: float):
        self.lr = lr

    def step(self, params: dict, grads: dict) -> None:
        """Apply one update to every array in ``params`` using ``grads[name]``.

        Parameters
        ----------
        params : dict of str to numpy.ndarray
            Updated in place (``param[...] = new``), so references you hold stay valid.
        grads : dict of str to numpy.ndarray
            The gradient of the loss for each parameter, same names and shapes.
        """
        missing = sorted(set(params) - set(grads))
        if missing:
            raise KeyError(f"no gradient for parameter(s) {', '.join(missing)}.")
        # t_ is the 1-based number of this step; Adam's bias corrections need it.
        self.t_ = getattr(self, "t_", 0) + 1
        for name, param in params.items():
            if not np.issubdtype(param.dtype, np.floating):
                # An integer array would silently round every update away.
                raise TypeError(f"parameter {name!r} must be a float array, got {param.dtype}.")
            param[...] = self._update(name, param, np.asarray(grads[name], dtype=param.dtype))

    def _state(self, attr: str, name: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """The array ``self.<attr>[name]``, created as ``fill`` on first use (so state starts at 0)."""
        slots = self.__dict__.setdefault(attr, {})
        if name not in slots:
            slots[name] = np.full_like(like, fill)
        return slots[name]

    def _update(self, name, param, grad):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Plain gradient descent, optionally with 1/t learning-rate decay.

    Parameters
    ----------
    lr : float
        Learning rate at the first step.
    decay : float, default 0
        ``lr_k = lr / (1 + decay * k)`` where ``k`` counts the steps already taken
        (0 on the first), exactly ``paddle.optimizer.lr.InverseTimeDecay(lr, gamma=decay)``
        stepped once after every update. 0 keeps the rate constant.
    """

    def __init__(self, lr: float, decay: float = 0.0):
        super().__init__(lr)
        self.decay = decay

    def _update(self, name, param, grad):
        # param <- param - lr_k * g,   lr_k = lr / (1 + decay * k)
        lr_k = self.lr / (1.0 + self.decay * (self.t_ - 1))
        return param - lr_k * grad


class Momentum(Optimizer):
    """Gradient descent with a velocity that remembers past gradients.

    Parameters
    ----------
    lr : float
        Learning rate.
    momentum : float, default 0.9
        How much of the previous velocity is kept (``mu``).
    use_nesterov : bool, default False
        Step along ``g + mu * v`` (a look-ahead) instead of ``v``.

    Notes
    -----
    Paddle's velocity is a plain sum, ``v = mu * v + g``, not an average
    ``mu * v + (1 - mu) * g``: in a steady slope it grows to ``g / (1 - mu)``,
    so momentum 0.9 takes steps ten times as long as SGD with the same ``lr``.
    """

    def __init__(self, lr: float, momentum: float = 0.9, use_nesterov: bool = False):
        super().__init__(lr)
        self.momentum = momentum
        self.use_nesterov = use_nesterov

    def _update(self, name, param, grad):
        # v <- mu * v + g;   param <- param - lr * v   (Nesterov: - lr * (g + mu * v))
        v = self._state("velocity_", name, param)
        v[...] = self.momentum * v + grad
        if self.use_nesterov:
            return param - self.lr * (grad + self.momentum * v)
        return param - self.lr * v


class AdaGrad(Optimizer):
    """Each coordinate's step is divided by the root of its summed squared gradients.

    Parameters
    ----------
    lr : float
        Learning rate.
    epsilon : float, default 1e-6
        Added to the root (outside it), so a zero gradient history cannot divide by zero.
    initial_accumulator_value : float, default 0
        Starting value of the sum; a positive value damps the very first steps.

    Notes
    -----
    The sum only grows, so the effective rate ``lr / sqrt(G)`` only shrinks: good for
    rare features, but training eventually slows to a crawl.
    """

    def __init__(self, lr: float, epsilon: float = 1e-6, initial_accumulator_value: float = 0.0):
        super().__init__(lr)
        self.epsilon = epsilon
        self.initial_accumulator_value = initial_accumulator_value

    def _update(self, name, param, grad):
        # G <- G + g^2;   param <- param - lr * g / (sqrt(G) + eps)
        G = self._state("sum_sq_", name, param, self.initial_accumulator_value)
        G[...] = G + grad * grad
        return param - self.lr * grad / (np.sqrt(G) + self.epsilon)


class RMSProp(Optimizer):
    """AdaGrad with a moving average instead of a sum, so the step size can recover.

    Parameters
    ----------
    lr : float
        Learning rate.
    rho : float, default 0.95
        Decay of the squared-gradient average (Paddle's default; Keras and PyTorch use 0.9 / 0.99).
    epsilon : float, default 1e-6
        Added *inside* the square root (unlike AdaGrad and Adam).
    momentum : float, default 0
        Momentum on the scaled step (0 = none).
    centered : bool, default False
        Divide by an estimate of the gradient's variance, ``E[g^2] - E[g]^2``, instead of ``E[g^2]``.
    """

    def __init__(self, lr: float, rho: float = 0.95, epsilon: float = 1e-6, momentum: float = 0.0,
                 centered: bool = False):
        super().__init__(lr)
        self.rho = rho
        self.epsilon = epsilon
        self.momentum = momentum
        self.centered = centered

    def _update(self, name, param, grad):
        # r <- rho * r + (1 - rho) * g^2           (centered: also m <- rho * m + (1 - rho) * g)
        # v <- momentum * v + lr * g / sqrt(r - m^2 + eps);   param <- param - v
        r = self._state("mean_sq_", name, param)
        r[...] = self.rho * r + (1 - self.rho) * grad * grad
        var = r
        if self.centered:
            m = self._state("mean_grad_", name, param)
            m[...] = self.rho * m + (1 - self.rho) * grad
            var = r - m * m
        v = self._state("velocity_", name, param)
        v[...] = self.momentum * v + self.lr * grad / np.sqrt(var + self.epsilon)
        return param - v


class Adam(Optimizer):
    """Momentum (first moment) divided by RMSProp's root (second moment), both bias-corrected.

    Parameters
    ----------
    lr : float
        Learning rate.
    beta1, beta2 : float, default 0.9, 0.999
        Decay of the gradient average ``m`` and of the squared-gradient average ``v``.
    epsilon : float, default 1e-8
        Added to ``sqrt(v_hat)``, the bias-corrected root.
    """

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8):
        super().__init__(lr)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon

    def _moments(self, name, param, grad):
        # m <- b1 * m + (1 - b1) * g;   v <- b2 * v + (1 - b2) * g^2
        m = self._state("m_", name, param)
        v = self._state("v_", name, param)
        m[...] = self.beta1 * m + (1 - self.beta1) * grad
        v[...] = self.beta2 * v + (1 - self.beta2) * grad * grad
        return m, v

    def _update(self, name, param, grad):
        # param <- param - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
        m, v = self._moments(name, param, grad)
        # Paddle's kernel folds both corrections into the rate and scales eps to match; the
        # same number as the line above, computed without dividing the arrays m and v.
        c2 = math.sqrt(1 - self.beta2 ** self.t_)
        lr_t = self.lr * c2 / (1 - self.beta1 ** self.t_)
        return param - lr_t * m / (np.sqrt(v) + self.epsilon * c2)


class RAdam(Adam):
    """Adam whose adaptive step is switched on gradually, once ``v`` has seen enough gradients.

    Parameters
    ----------
    lr : float
        Learning rate.
    beta1, beta2 : float, default 0.9, 0.999
        As in ``Adam``.
    epsilon : float, default 1e-8
        Added to ``sqrt(v)`` (not the corrected root, unlike Adam).

    Notes
    -----
    ``rho_t`` estimates how many gradients the average ``v`` effectively holds. While
    ``rho_t <= 5`` the variance of ``1 / sqrt(v)`` is too large to trust, so the step is
    momentum SGD (``lr * m_hat``); after that it is Adam's step times a rectifier
    ``r_t`` that rises from about 0 to 1. With the default ``beta2`` the switch happens at step 6.
    """

    def _update(self, name, param, grad):
        # m, v as in Adam;  rho_inf = 2 / (1 - b2) - 1;  rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        # rho_t > 5:  param <- param - lr * m_hat * r_t * sqrt(1 - b2^t) / (sqrt(v) + eps)
        #             r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        # otherwise:  param <- param - lr * m_hat
        b1, b2, t = self.beta1, self.beta2, self.t_
        m, v = self._moments(name, param, grad)
        m_hat = m / (1 - b1 ** t)
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t <= 5:
            return param - self.lr * m_hat
        r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return param - self.lr * m_hat * r_t * math.sqrt(1 - b2 ** t) / (np.sqrt(v) + self.epsilon)
