"""A static-shape form of a trained detector, for TensorFlow, TFLite and CoreML (docs/exports.md).

torchvision's detectors end in data-dependent shapes (score filtering, NMS, the RoI pooling of a
variable number of proposals), which those targets cannot hold. ``static_detector(model, size)``
computes the same detections with fixed shapes only: the network input [1,3,H,W] (Loupe's
normalised input, as model.onnx) -> ``boxes`` [K,4] (input pixels), ``scores`` [K], ``labels`` [K]
int64 (0-based), K = the model's detections per image, unused slots with score 0.

- Candidates: fixed-size top-k where torchvision keeps "up to n above the threshold"; a candidate
  below the threshold stays in its slot, marked invalid.
- NMS (``static_nms``): greedy class-aware NMS over candidates sorted by score, as the fixed point
  of "kept = valid and no kept higher-scored box of its class overlaps it by more than t",
  unrolled ``NMS_ITERATIONS`` times. Exact once converged, which takes as many iterations as the
  longest chain of boxes each overlapping the next (the package is checked against torch before
  it is built).
- Faster R-CNN: the RPN's per-level top-n and its NMS as above, a fixed number of proposals (the
  model's post-NMS count; those past the kept ones invalid) and RoIAlign (``roi_align``) written
  as one gather over the pyramid levels flattened together, each proposal reading its own level.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.image_list import ImageList

from trainer.detection.model import TIE_BREAK, StableProposals, StableRoIHeads

NMS_ITERATIONS = 24  # measured: converged after <= 11 (mean 5-8) on the sample set's detectors
# the final NMS runs on at most this many (box, class) candidates, the best by score: greedy NMS
# keeps the top K of them exactly unless more than CANDIDATES - K of them are suppressed
CANDIDATES = 1000
INVALID = -1e4  # the rank of a candidate that may never be chosen (finite: TFLite-friendly)


class StaticGraphUnsupported(ValueError):
    """The detector's architecture has no static form."""


def box_iou(boxes: torch.Tensor) -> torch.Tensor:
    """[N,4] -> [N,N] IoU, 0 where a box has no area."""
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-9)


def static_nms(boxes: torch.Tensor, classes: torch.Tensor, valid: torch.Tensor, threshold: float,
               iterations: int = NMS_ITERATIONS) -> torch.Tensor:
    """Greedy class-aware NMS of [N,4] boxes already sorted by decreasing score -> a float 0/1
    keep mask [N]. ``valid`` [N] float 0/1: candidates that take part at all."""
    n = boxes.shape[0]
    same = (classes[:, None] == classes[None, :]).to(boxes.dtype)
    earlier = torch.triu(torch.ones(n, n, dtype=boxes.dtype), diagonal=1)  # [j, i]: j ranks before i
    # [j, i] = 1 where a kept j suppresses i
    suppresses = (box_iou(boxes) > threshold).to(boxes.dtype) * same * earlier * valid[:, None]
    keep = valid
    for _ in range(iterations):
        hit = torch.matmul(keep[None, :], suppresses)[0]
        keep = valid * (hit < 0.5).to(boxes.dtype)
    return keep


def _sorted(ranks: torch.Tensor, k: int) -> torch.Tensor:
    return torch.topk(ranks, k, sorted=True).indices


def _untie(values: torch.Tensor) -> torch.Tensor:
    return values - torch.arange(values.shape[-1], dtype=values.dtype) * TIE_BREAK


def _clip(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    x = boxes[:, 0::2].clamp(0, width)
    y = boxes[:, 1::2].clamp(0, height)
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)


def _not_small(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    return ((boxes[:, 2] - boxes[:, 0] >= min_size) & (boxes[:, 3] - boxes[:, 1] >= min_size)).float()


def _hwa(x: torch.Tensor, columns: int) -> torch.Tensor:
    """[1, A*columns, H, W] -> [H*W*A, columns] (torchvision's order), with 4-D ops only."""
    return x.permute(0, 2, 3, 1).reshape(-1, columns)


class _Final(nn.Module):
    """Candidates (boxes, ranks, scores, classes, valid) -> the top K after class-aware NMS."""

    def __init__(self, nms_threshold: float, detections: int, offset: int) -> None:
        super().__init__()
        self.nms_threshold, self.detections, self.offset = nms_threshold, detections, offset

    def forward(self, boxes, ranks, scores, classes, valid):
        order = _sorted(torch.where(valid > 0, ranks, torch.full_like(ranks, INVALID)), min(CANDIDATES, ranks.shape[0]))
        boxes, ranks, scores, classes, valid = boxes[order], ranks[order], scores[order], classes[order], valid[order]
        keep = static_nms(boxes, classes, valid, self.nms_threshold)
        k = min(self.detections, keep.shape[0])
        top = _sorted(torch.where(keep > 0, ranks, torch.full_like(ranks, INVALID)), k)
        kept = keep[top]
        out_boxes, out_scores = boxes[top] * kept[:, None], scores[top] * kept
        # no clamp on integers: onnx2tf makes it a relu, which CoreML takes for floats only
        out_labels = (classes[top] - self.offset) * kept.to(torch.int64)
        if k < self.detections:  # fewer candidates than slots: pad with empty ones
            pad = self.detections - k
            out_boxes = torch.cat([out_boxes, torch.zeros(pad, 4)])
            out_scores = torch.cat([out_scores, torch.zeros(pad)])
            out_labels = torch.cat([out_labels, torch.zeros(pad, dtype=torch.int64)])
        return out_boxes, out_scores, out_labels


def _bin_order(output: int, sampling: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant indices into [low samples; high samples] of one axis, for every (bin y, bin x,
    sample y, sample x, corner) in that order: (the y index [M], the x index [M])."""
    n = output * sampling
    by, bx, sy, sx, corner = torch.meshgrid(*(torch.arange(k) for k in (output, output, sampling, sampling, 4)),
                                            indexing="ij")
    y = by * sampling + sy + n * (corner // 2)
    x = bx * sampling + sx + n * (corner % 2)
    return y.reshape(-1), x.reshape(-1)


def roi_align(flat: torch.Tensor, boxes: torch.Tensor, level: torch.Tensor, scales: torch.Tensor,
              heights: torch.Tensor, widths: torch.Tensor, starts: torch.Tensor, output: int,
              sampling: int) -> torch.Tensor:
    """torchvision.ops.roi_align (aligned=False) of [R,4] boxes, each on its own pyramid level.

    ``flat`` [T, C]: every level's [H*W, C] rows stacked; ``level`` [R] int64; ``scales``,
    ``heights``, ``widths``, ``starts`` (first row of each level in ``flat``) per level.
    Bilinear sampling is separable: each of a bin's sampling^2 points reads 4 rows of ``flat``
    with weights from its y and x, and a point beyond one pixel outside the map reads zero, as
    torchvision's kernel. Tensors stay 2-D/3-D (onnx2tf takes 4-D ones for images).
    Returns [R * output^2, C], bins row-major."""
    scale, height, width, start = scales[level], heights[level], widths[level], starts[level]
    x1, y1 = boxes[:, 0] * scale, boxes[:, 1] * scale
    roi_w = (boxes[:, 2] * scale - x1).clamp(min=1.0)
    roi_h = (boxes[:, 3] * scale - y1).clamp(min=1.0)
    steps = (torch.arange(output * sampling, dtype=boxes.dtype) + 0.5) / sampling  # in bins, bin-major
    ys = y1[:, None] + steps[None, :] * (roi_h / output)[:, None]  # [R, output*sampling]
    xs = x1[:, None] + steps[None, :] * (roi_w / output)[:, None]

    def axis(v: torch.Tensor, size: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[R, n] -> ([low; high] pixel indices [R, 2n], their weights [R, 2n])."""
        size = size.to(v.dtype)[:, None]
        inside = ((v >= -1.0) & (v <= size)).to(v.dtype)
        v = v.clamp(min=0)
        low = torch.minimum(torch.floor(v), size - 1)
        frac = (v - low) * (low < size - 1).to(v.dtype)
        high = torch.minimum(low + 1, size - 1)
        return torch.cat([low, high], dim=1), torch.cat([(1 - frac) * inside, frac * inside], dim=1)

    y_index, x_index = _bin_order(output, sampling)
    rows, wy = axis(ys, height)
    cols, wx = axis(xs, width)
    rows, wy, cols, wx = rows[:, y_index], wy[:, y_index], cols[:, x_index], wx[:, x_index]  # [R, M]
    index = (start[:, None].to(rows.dtype) + rows * width[:, None].to(rows.dtype) + cols).to(torch.int64)
    weight = wy * wx / (sampling * sampling)
    points = sampling * sampling * 4
    gathered = flat[index.reshape(-1)].reshape(-1, points, flat.shape[1])  # [R * bins, points, C]
    return (gathered * weight.reshape(-1, points, 1)).sum(dim=1)


class StaticFasterRCNN(nn.Module):
    def __init__(self, model: FasterRCNN, size: tuple[int, int]) -> None:
        super().__init__()
        self.model, self.size = model, size
        rpn, heads = model.rpn, model.roi_heads
        image = torch.zeros(1, 3, *size)
        with torch.no_grad():
            features = model.backbone(image)
            feats = list(features.values())
            anchors = rpn.anchor_generator(ImageList(image, [size]), feats)[0]
            pool = heads.box_roi_pool
            proposals = [torch.tensor([[0.0, 0.0, 8.0, 8.0]])]
            pool(features, proposals, [size])  # sets its scales and level mapper
        self.register_buffer("anchors", anchors, persistent=False)
        self.per_level = [f.shape[2] * f.shape[3] * rpn.head.cls_logits.out_channels for f in feats]
        self.stable_rpn = isinstance(rpn, StableProposals)
        self.stable_heads = isinstance(heads, StableRoIHeads)
        self.pre_nms, self.post_nms = rpn.pre_nms_top_n(), rpn.post_nms_top_n()
        # the maps RoIAlign reads: torchvision's keeps those of featmap_names the backbone has, in its order
        self.pool_names = [name for name in features if name in pool.featmap_names]
        pooled = [features[name] for name in self.pool_names]
        self.register_buffer("scales", torch.tensor(pool.scales, dtype=torch.float32), persistent=False)
        self.register_buffer("heights", torch.tensor([f.shape[2] for f in pooled]), persistent=False)
        self.register_buffer("widths", torch.tensor([f.shape[3] for f in pooled]), persistent=False)
        starts = [0]
        for f in pooled[:-1]:
            starts.append(starts[-1] + f.shape[2] * f.shape[3])
        self.register_buffer("starts", torch.tensor(starts), persistent=False)
        mapper = pool.map_levels
        self.k_min, self.k_max, self.s0, self.lvl0, self.eps = mapper.k_min, mapper.k_max, mapper.s0, mapper.lvl0, \
            mapper.eps
        (self.output,) = set(pool.output_size)
        self.sampling = pool.sampling_ratio
        self.final = _Final(heads.nms_thresh, heads.detections_per_img, 1)

    def proposals(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The RPN's proposals [P,4] in its order, and which of them torchvision would have [P]."""
        rpn, (height, width) = self.model.rpn, self.size
        objectness, deltas = rpn.head(feats)
        scores = torch.cat([_hwa(o, 1)[:, 0] for o in objectness])
        deltas = torch.cat([_hwa(d, 4) for d in deltas])
        boxes = rpn.box_coder.decode_single(deltas, self.anchors)
        if self.stable_rpn:  # StableProposals' ranking
            scores = _untie(torch.sign(scores) * torch.log1p(torch.abs(scores)))
        picked, levels, start = [], [], 0
        for level, count in enumerate(self.per_level):
            top = _sorted(scores[start:start + count], min(self.pre_nms, count)) + start
            picked.append(top)
            levels.append(torch.full((top.shape[0],), level, dtype=torch.int64))
            start += count
        picked, levels = torch.cat(picked), torch.cat(levels)
        ranks = torch.sigmoid(scores[picked])
        order = _sorted(ranks, ranks.shape[0])
        picked, levels, ranks = picked[order], levels[order], ranks[order]
        boxes = _clip(boxes[picked], height, width)
        valid = _not_small(boxes, rpn.min_size) * (ranks >= rpn.score_thresh).float()
        keep = static_nms(boxes, levels, valid, rpn.nms_thresh)
        count = min(self.post_nms, keep.shape[0])
        top = _sorted(torch.where(keep > 0, ranks, torch.full_like(ranks, INVALID)), count)
        return boxes[top], keep[top]

    def forward(self, image: torch.Tensor):
        heads, (height, width) = self.model.roi_heads, self.size
        features = self.model.backbone(image)
        boxes, live = self.proposals(list(features.values()))
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        level = torch.floor(self.lvl0 + torch.log2(torch.sqrt(areas) / self.s0) + self.eps)
        level = (level.clamp(self.k_min, self.k_max) - self.k_min).to(torch.int64)
        flat = torch.cat([features[name].permute(0, 2, 3, 1).reshape(-1, features[name].shape[1])
                          for name in self.pool_names])
        pooled = roi_align(flat, boxes, level, self.scales, self.heights, self.widths, self.starts, self.output,
                           self.sampling)
        bins = self.output * self.output
        # [R, C * bins] in torch's (C, y, x) order; a 4-D [R, C, y, x] only for a convolutional box head
        pooled = pooled.reshape(-1, bins, flat.shape[1]).permute(0, 2, 1).reshape(boxes.shape[0], -1)
        if not isinstance(heads.box_head, TwoMLPHead):
            pooled = pooled.reshape(boxes.shape[0], flat.shape[1], self.output, self.output)
        logits, regression = heads.box_predictor(heads.box_head(pooled))
        classes = logits.shape[1]
        decoded = heads.box_coder.decode_single(regression, boxes).reshape(-1, 4)
        decoded = _clip(decoded, height, width).reshape(-1, classes, 4)[:, 1:].reshape(-1, 4)
        scores = F.softmax(logits, -1)[:, 1:].reshape(-1)
        ranks = F.log_softmax(logits, -1)[:, 1:].reshape(-1) if self.stable_heads else scores
        if self.stable_heads:
            ranks = _untie(ranks)
        labels = torch.arange(1, classes).repeat(boxes.shape[0])
        valid = (scores > heads.score_thresh).float() * _not_small(decoded, 1e-2) * \
            live[:, None].expand(-1, classes - 1).reshape(-1)
        return self.final(decoded, ranks, scores, labels, valid)


class StaticOneStage(nn.Module):
    """RetinaNet and FCOS: per-level top-k of (anchor, class) scores, decoded, then _Final."""

    def __init__(self, model: RetinaNet | FCOS, size: tuple[int, int]) -> None:
        super().__init__()
        self.model, self.size, self.fcos = model, size, isinstance(model, FCOS)
        image = torch.zeros(1, 3, *size)
        with torch.no_grad():
            feats = list(model.backbone(image).values())
            anchors = model.anchor_generator(ImageList(image, [size]), feats)[0]
        self.register_buffer("anchors", anchors, persistent=False)
        self.per_level = [f.shape[2] * f.shape[3] * model.anchor_generator.num_anchors_per_location()[0]
                          for f in feats]
        self.final = _Final(model.nms_thresh, model.detections_per_img, 0)

    def forward(self, image: torch.Tensor):
        model, (height, width) = self.model, self.size
        feats = list(model.backbone(image).values())
        cls_head, reg_head = model.head.classification_head, model.head.regression_head
        classes = cls_head.num_classes
        logits = torch.cat([_hwa(cls_head.cls_logits(cls_head.conv(f)), classes) for f in feats])
        reg_features = [reg_head.conv(f) for f in feats]
        if self.fcos:
            deltas = torch.cat([_hwa(F.relu(reg_head.bbox_reg(f)), 4) for f in reg_features])
            centre = torch.cat([_hwa(reg_head.bbox_ctrness(f), 1) for f in reg_features])
            scores = torch.sqrt(torch.sigmoid(logits) * torch.sigmoid(centre))
        else:
            deltas = torch.cat([_hwa(reg_head.bbox_reg(f), 4) for f in reg_features])
            scores = torch.sigmoid(logits)
        picked, start = [], 0
        for count in self.per_level:
            level = scores[start:start + count].reshape(-1)
            level = torch.where(level > model.score_thresh, level, torch.full_like(level, INVALID))
            picked.append(_sorted(level, min(model.topk_candidates, count * classes)) + start * classes)
            start += count
        picked = torch.cat(picked)
        flat = scores.reshape(-1)[picked]
        anchor = torch.div(picked, classes, rounding_mode="floor")
        labels = picked - anchor * classes
        if self.fcos:
            boxes = model.box_coder.decode(deltas[anchor], self.anchors[anchor])
        else:
            boxes = model.box_coder.decode_single(deltas[anchor], self.anchors[anchor])
        boxes = _clip(boxes, height, width)
        valid = (flat > model.score_thresh).float()
        return self.final(boxes, flat, flat, labels, valid)


def static_detector(model: nn.Module, size: tuple[int, int]) -> nn.Module:
    """The static-shape form of a trained torchvision detector (eval mode) for an input of
    ``size`` (height, width); raises StaticGraphUnsupported for another architecture."""
    if isinstance(model, FasterRCNN):
        return StaticFasterRCNN(model, size).eval()
    if isinstance(model, (RetinaNet, FCOS)):
        return StaticOneStage(model, size).eval()
    raise StaticGraphUnsupported(f"{type(model).__name__} detectors have no static-shape form")
