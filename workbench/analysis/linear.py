"""The linear probe's classifier through torch: standardisation and multinomial logistic
regression with sklearn's objective (L2 penalty 1/C on the weights, class weights), fitted by
full-batch L-BFGS — on the GPU when there is one, on the CPU in chunks of rows, for probes at a
million frames.

The objective is strictly convex, so it has one optimum, which sklearn's ``lbfgs`` solver reaches
too: on the same data the two give the same predictions but for frames at the boundary within the
solvers' tolerance. On the CPU the rows stay float32 where they are and each chunk is computed
in float64 (memory: the data plus a chunk); on a GPU the rows are copied once, float32.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..engine.device import default_device

CHUNK_ROWS = 65_536


class TorchLogisticProbe(ClassifierMixin, BaseEstimator):
    """``StandardScaler`` + ``LogisticRegression(C, class_weight)`` in torch (see the module).

    Learned: ``mean_``, ``scale_`` (d,), ``coef_`` (K, d) and ``intercept_`` (K,) on the
    standardised inputs, ``classes_``, ``n_iter_``. ``device`` defaults to CUDA when available.
    """

    def __init__(self, C: float = 1.0, class_weight: str | None = "balanced", max_iter: int = 1000,
                 tol: float = 1e-7, device=None, chunk_rows: int = CHUNK_ROWS):
        self.C, self.class_weight, self.max_iter, self.tol = C, class_weight, max_iter, tol
        self.device, self.chunk_rows = device, chunk_rows

    def _rows(self, X: np.ndarray):
        """(tensor of ``X`` on the device, compute dtype): float64 chunks on the CPU, float32 on a GPU."""
        device = default_device(self.device)
        dtype = torch.float64 if device.type == "cpu" else torch.float32
        return torch.as_tensor(np.ascontiguousarray(X, np.float32), device=device), dtype

    def _standardise(self, dtype, device):
        """A function of a chunk of rows: standardised with ``mean_`` / ``scale_``, in ``dtype``."""
        mean, scale = (torch.as_tensor(a, dtype=dtype, device=device) for a in (self.mean_, self.scale_))
        return lambda x: (x.to(dtype) - mean) / scale

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"a probe needs 2 classes or more; got {len(self.classes_)} class")
        x, dtype = self._rows(X)
        device = x.device
        sd = X.std(axis=0, dtype=np.float64)
        self.mean_, self.scale_ = X.mean(axis=0, dtype=np.float64), np.where(sd > 0, sd, 1.0)
        standardise = self._standardise(dtype, device)
        weight = compute_class_weight(self.class_weight, classes=np.arange(len(self.classes_)), y=codes)
        sample_weight = torch.as_tensor(weight[codes], dtype=dtype, device=device)
        target = torch.as_tensor(codes, device=device)
        total = float(sample_weight.sum())  # the objective divided by it, as sklearn's lbfgs does
        # two classes: sklearn fits one weight vector w; softmax's pair (w/2, -w/2) carries half
        # its squared norm, so the penalty doubles to give the same optimum
        penalty = 1 / (2 * self.C * total) * (2 if len(self.classes_) == 2 else 1)
        W = torch.zeros((len(self.classes_), X.shape[1]), dtype=dtype, device=device, requires_grad=True)
        b = torch.zeros(len(self.classes_), dtype=dtype, device=device, requires_grad=True)
        opt = torch.optim.LBFGS([W, b], lr=1, max_iter=self.max_iter, tolerance_grad=self.tol,
                                tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = penalty * (W * W).sum()
            loss.backward()
            value = loss.detach()
            for s in range(0, len(x), self.chunk_rows):
                part = slice(s, s + self.chunk_rows)
                ce = torch.nn.functional.cross_entropy(standardise(x[part]) @ W.T + b, target[part], reduction="none")
                chunk = (sample_weight[part] * ce).sum() / total
                chunk.backward()
                value = value + chunk.detach()
            return value

        opt.step(closure)
        self.coef_, self.intercept_ = W.detach().cpu().numpy(), b.detach().cpu().numpy()
        self.n_iter_ = int(opt.state[opt._params[0]].get("n_iter", 0))
        return self

    @torch.no_grad()
    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        x, dtype = self._rows(validate_data(self, X, reset=False, dtype=np.float32))
        W, b = (torch.as_tensor(a, dtype=dtype, device=x.device) for a in (self.coef_, self.intercept_))
        standardise = self._standardise(dtype, x.device)
        scores = torch.cat([standardise(x[s:s + self.chunk_rows]) @ W.T + b
                            for s in range(0, len(x), self.chunk_rows)]).cpu().numpy()
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores  # sklearn's shapes

    def predict(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)]
