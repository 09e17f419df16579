"""The classifier network: backbone stages -> mean pooling -> signed square root (when chosen) -> L2
normalisation -> linear -> softmax (multiclass) or sigmoid (multilabel).

The power transform and normalisation make few-shot linear heads much better behaved on
post-activation CNN features (they damp a few dominant channels); they are part of the graph,
so the exported ONNX model computes exactly what was trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-6


def normalise(pooled: torch.Tensor, *, power: bool = True) -> torch.Tensor:
    """[..., D] pooled features -> unit-length embeddings (after the signed square root when ``power``)."""
    if power:
        pooled = torch.sign(pooled) * torch.sqrt(pooled.abs() + EPS)
    return F.normalize(pooled, dim=-1, eps=EPS)


class ClassifierNet(nn.Module):
    def __init__(self, stages: nn.ModuleList, tail_start: int, head: nn.Linear, *, multilabel: bool,
                 power: bool = True) -> None:
        super().__init__()
        self.stages = stages
        self.tail_start = tail_start
        self.head = head
        self.multilabel = multilabel
        # the signed square root: chosen with the head (trainer.classification.selection)
        self.power = power
        # NHWC activations while training on a CPU: the tail's depthwise and 1x1 convolutions train
        # about 1.4x faster there (docs/training.md#speed); export traces the plain NCHW network
        self.channels_last = False

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def frozen(self, images: torch.Tensor) -> torch.Tensor:
        """The part whose outputs are cached: images -> boundary feature map."""
        x = self._layout(images)
        for stage in self.stages[: self.tail_start]:
            x = stage(x)
        return x

    def pooled(self, boundary: torch.Tensor) -> torch.Tensor:
        """Boundary map -> [N,D] pooled features, before normalisation."""
        x = self._layout(boundary)
        for stage in self.stages[self.tail_start :]:
            x = stage(x)
        return x.mean(dim=(2, 3))

    def embedding(self, boundary: torch.Tensor) -> torch.Tensor:
        return normalise(self.pooled(boundary), power=self.power)

    def logits_from_boundary(self, boundary: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(boundary))

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images [N,3,H,W] (preprocessed) -> scores [N,C] (probabilities)."""
        return self.activation(self.logits_from_boundary(self.frozen(images)))

    def tail_parameters(self) -> list[nn.Parameter]:
        return [p for stage in self.stages[self.tail_start :] for p in stage.parameters()]

    def train_tail(self) -> None:
        """Training mode for the tail, with BatchNorm statistics frozen (few images make poor
        batch statistics) and the frozen part in eval mode."""
        self.eval()
        for stage in self.stages[self.tail_start :]:
            stage.train()
            for module in stage.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
