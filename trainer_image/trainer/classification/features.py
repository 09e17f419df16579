"""Boundary features: every image (and its augmented views) through the frozen part of the
backbone once, cached in memory as float16 and checkpointed one view at a time.

Views are computed view-major (view 0 of every image, then view 1, ...), so a run that runs
short of time simply trains on fewer views, and a resumed run continues with the next view.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from loupe.artifacts import Preprocessing
from loupe.runner.examples import Example
from trainer.classification.augment import view_input
from trainer.classification.checkpoint import RunCheckpoints
from trainer.classification.data import load_image
from trainer.classification.model import ClassifierNet
from trainer.errors import Cancelled, ImagesRejected


def draft_size(pre: Preprocessing) -> tuple[int, int]:
    """Decode JPEGs at no less than twice the network input: enough for crops of 55% area."""
    height, width = pre.size
    return 2 * width, 2 * height


@dataclass
class ExtractionReport:
    views_done: int
    computed: int  # complete views computed in this run (image-views)
    restored: int  # views read back from checkpoints


class ViewExtractor:
    def __init__(
        self,
        model: ClassifierNet,
        pre: Preprocessing,
        device: torch.device,
        *,
        seed: int,
        batch_size: int,
        should_stop: Callable[[], bool],
        pooled: bool = False,
    ) -> None:
        self.model = model
        self.pre = pre
        self.device = device
        self.seed = seed
        self.batch_size = batch_size
        self.should_stop = should_stop
        # pooled: the whole backbone is frozen; keep only the spatial mean (what the head sees)
        self.pooled = pooled
        self.forwarded = 0  # image-views that went through the backbone

    @torch.no_grad()  # not inference_mode: fine-tuning reads these tensors under autograd
    def boundary(self, inputs: np.ndarray) -> torch.Tensor:
        x = self.model.frozen(torch.from_numpy(inputs).to(self.device))
        if self.pooled:
            x = x.mean(dim=(2, 3), keepdim=True)
        return x.to("cpu", torch.float16)

    def one_view(
        self,
        examples: Sequence[Example],
        view: int,
        on_batch: Callable[[int], None],
        abandon: Callable[[], bool] = lambda: False,
    ) -> torch.Tensor | None:
        """Boundary maps [N,C,h,w] float16 of one view of every image; None if ``abandon()``
        turned true on the way."""
        out: list[torch.Tensor] = []
        problems: list[tuple[str, str]] = []
        for start in range(0, len(examples), self.batch_size):
            if self.should_stop():
                raise Cancelled("cancelled during feature extraction")
            if abandon():
                return None
            batch = []
            for index in range(start, min(len(examples), start + self.batch_size)):
                try:
                    image = load_image(examples[index], draft_size(self.pre))
                except ImagesRejected as exc:
                    problems.extend(exc.problems)
                    continue
                # the key is the image's index: paths change between attempts, order does not
                batch.append(view_input(image, self.pre, seed=self.seed, image_key=str(index), view=view))
            if problems:
                continue  # keep checking the rest so the error names every bad file at once
            out.append(self.boundary(np.stack(batch)))
            self.forwarded += len(batch)
            on_batch(len(batch))
        if problems:
            raise ImagesRejected(problems)
        return torch.cat(out)


def extract(
    extractor: ViewExtractor,
    examples: Sequence[Example],
    *,
    kind: str,
    views: int,
    checkpoints: RunCheckpoints,
    soft_deadline: float,
    on_batch: Callable[[int], None],
) -> tuple[torch.Tensor, ExtractionReport]:
    """[N, V', C, h, w] float16 with 1 <= V' <= views: views after the first are dropped when
    ``soft_deadline`` passes (the budget check before extraction makes room for view 0)."""
    maps: list[torch.Tensor] = []
    computed = restored = 0
    for view in range(views):
        cached = checkpoints.load_view(kind, view)
        if cached is not None and cached.shape[0] == len(examples):
            maps.append(cached)
            restored += 1
            on_batch(len(examples))
            continue
        late = (lambda: time.monotonic() > soft_deadline) if view > 0 else (lambda: False)
        result = extractor.one_view(examples, view, on_batch, abandon=late)
        if result is None:
            break
        maps.append(result)
        computed += len(examples)
        checkpoints.save_view(kind, view, result)
    return torch.stack(maps, dim=1), ExtractionReport(
        views_done=len(maps), computed=computed, restored=restored
    )
