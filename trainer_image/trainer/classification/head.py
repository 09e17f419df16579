"""The linear head on frozen embeddings: L2-regularised logistic regression (softmax or
one-vs-rest sigmoid), solved full-batch with L-BFGS. Convex, fast and deterministic: it is
the first model of every run and the initialisation of fine-tuning."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.errors import Diverged

# Inverse regularisation strength, as in scikit-learn's LogisticRegression(C=...): the
# objective is C * sum(losses) + ||W||^2 / 2, averaged per sample here.
DEFAULT_C = 10.0


def head_loss(
    logits: torch.Tensor, targets: torch.Tensor, multilabel: bool, label_smoothing: float = 0.0
) -> torch.Tensor:
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits, targets)
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def fit_linear_head(
    embeddings: torch.Tensor,
    targets: torch.Tensor,
    num_classes: int,
    *,
    multilabel: bool,
    c: float = DEFAULT_C,
    max_iter: int = 300,
) -> nn.Linear:
    """embeddings [M,D] float32, targets [M] int64 or [M,C] float32 -> a fitted nn.Linear."""
    x = embeddings.detach().float()
    head = nn.Linear(x.shape[1], num_classes).to(x.device)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    if multilabel:
        # start from the label frequencies: a neutral model with the right base rates
        rate = targets.float().mean(0).clamp(1e-3, 1 - 1e-3)
        head.bias.data.copy_(torch.log(rate / (1 - rate)))
    reg = 1.0 / (c * x.shape[0])
    optimizer = torch.optim.LBFGS(
        head.parameters(),
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        # multilabel: BCE averages over classes too; scale back to a per-sample sum over classes
        scale = num_classes if multilabel else 1.0
        loss = scale * head_loss(head(x), targets, multilabel) + 0.5 * reg * head.weight.pow(2).sum()
        loss.backward()
        return loss

    final = optimizer.step(closure)
    if not torch.isfinite(torch.as_tensor(final)) or not torch.isfinite(head.weight).all():
        raise Diverged("the linear head's loss is not finite (non-finite image features?)")
    return head
