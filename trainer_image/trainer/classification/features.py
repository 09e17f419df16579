"""Boundary features: every image (and its augmented views) through the frozen part of the
backbone once, cached in memory as float16 and checkpointed one view at a time.

Views are computed view-major (view 0 of every image, then view 1, ...), so a run that runs
short of time simply trains on fewer views, and a resumed run continues with the next view.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from loupe.artifacts import Preprocessing
from loupe.runner.examples import Example
from trainer.classification.augment import view_input
from trainer.classification.checkpoint import RunCheckpoints
from trainer.classification.data import load_image
from trainer.classification.model import ClassifierNet
from trainer.errors import Cancelled, ImagesRejected

log = logging.getLogger(__name__)
ONNX_OPSET = 17


class FrozenPart:
    """The frozen part of the network (images -> boundary maps) as the trainer runs it: on a CPU,
    an onnxruntime session of its exported graph, which fuses BatchNorm and the activations into
    the convolutions and ran EfficientNet-Lite0's frozen part 3.5x faster than torch did in NHWC
    and 6.8x faster than in NCHW (docs/training.md#speed); on a GPU, or when the graph cannot be
    exported, the torch modules. Its weights never change during a run, so one export serves it."""

    def __init__(self, model: ClassifierNet, pre: Preprocessing, device: torch.device) -> None:
        self.model, self.device = model, device
        self.session = _session(model, pre) if device.type == "cpu" else None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """[N,3,H,W] float32 on the device -> the boundary maps, float32 on the device."""
        if self.session is None or images.shape[0] == 0:
            return self.model.frozen(images)
        out = self.session.run(None, {"images": np.ascontiguousarray(images.numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)


def _session(model: ClassifierNet, pre: Preprocessing) -> ort.InferenceSession | None:
    height, width = pre.size
    graph = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(nn.Sequential(*model.stages[: model.tail_start]).eval(),
                              (torch.zeros(1, 3, height, width),), graph, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["images"], output_names=["boundary"],
                              dynamic_axes={"images": {0: "batch"}, "boundary": {0: "batch"}})
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the trainer's thread setting
        options.inter_op_num_threads = 1
        return ort.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - any backbone the exporter or onnxruntime refuses runs in torch
        log.warning("the frozen part runs in torch (%s: %s)", type(exc).__name__, exc)
        return None


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
        frozen: FrozenPart,
        pre: Preprocessing,
        device: torch.device,
        *,
        seed: int,
        batch_size: int,
        should_stop: Callable[[], bool],
        pooled: bool = False,
    ) -> None:
        self.frozen = frozen
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
        x = self.frozen(torch.from_numpy(inputs).to(self.device))
        if self.pooled:
            x = x.mean(dim=(2, 3), keepdim=True)
        return x.to("cpu", torch.float16).contiguous()  # the cache and its checkpoints stay NCHW

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
