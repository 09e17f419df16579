"""The stream of augmented training samples, and its batches."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from loupe.artifacts import Preprocessing
from trainer.detection import augment as aug
from trainer.detection.data import DetectionExample, decode, pixel_boxes


class SampleStream(torch.utils.data.Dataset):
    """Sample k of the run: epoch k // N, the (k % N)-th image of that epoch's shuffled order,
    augmented with a generator of (seed, epoch, image). Pure in k, so a resumed run (or a
    DataLoader worker) computes exactly what an uninterrupted one would have."""

    # decoded images are kept while they fit; beyond, they are decoded again when drawn
    CACHE_PIXELS = 200_000_000

    def __init__(self, examples: Sequence[DetectionExample], pre: Preprocessing, seed: int,
                 cfg: aug.AugmentConfig, length: int) -> None:
        self.examples = list(examples)
        self.pre = pre
        self.seed = seed
        self.cfg = cfg
        self.length = length
        self.fill = aug.pad_colour(pre)
        self._orders: dict[int, np.ndarray] = {}
        self._cache: dict[int, object] = {}
        self._cached_pixels = 0

    def __len__(self) -> int:
        return self.length

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.examples))}
        return self._orders[epoch]

    def _image(self, index: int):
        image = self._cache.get(index)
        if image is None:
            image = decode(self.examples[index], self.pre)
            if self._cached_pixels + image.width * image.height <= self.CACHE_PIXELS:
                self._cache[index] = image
                self._cached_pixels += image.width * image.height
        return image

    def __getitem__(self, k: int):
        epoch, position = divmod(int(k), len(self.examples))
        index = int(self._order(epoch)[position])
        example = self.examples[index]
        image = self._image(index)
        rng = aug.sample_rng(self.seed, epoch, index)
        picture, boxes, labels = aug.augment(image, pixel_boxes(example, image), example.labels, rng, self.cfg,
                                             self.fill)
        tensor, boxes, labels = aug.network_input(picture, boxes, labels, self.pre)
        return torch.from_numpy(tensor), torch.from_numpy(boxes), torch.from_numpy(labels)


def batches(stream: SampleStream, start: int, batch_size: int, device: torch.device
            ) -> Iterator[tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]]:
    """Batches of (images, boxes, labels) on ``device`` from iteration ``start`` on."""
    sampler = range(start * batch_size, len(stream))
    workers = 0 if device.type == "cpu" else min(8, max(1, (torch.get_num_threads() or 2) - 1))
    # its own generator: a DataLoader draws a seed when it starts, which must not move the global
    # torch generator that a resumed run restores
    loader = torch.utils.data.DataLoader(stream, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                         collate_fn=list, generator=torch.Generator().manual_seed(0))
    for batch in loader:
        yield [t.to(device) for t, _, _ in batch], [b.to(device) for _, b, _ in batch], \
            [c.to(device) for _, _, c in batch]
