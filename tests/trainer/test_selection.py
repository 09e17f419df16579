"""The classifier's head selection by cross-validation and its temperature (trainer.classification.selection),
on synthetic features: what is chosen, on which images, and how the probabilities are calibrated."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from trainer.classification.selection import (
    CANDIDATES,
    MARGIN,
    MARGIN_IMAGES,
    choose_head,
    cross_fitted_probabilities,
    fit_temperature,
    folds_for,
    logit_scale,
    split_temperature,
)


def test_folds_keep_every_category_in_training_and_skip_single_image_categories():
    targets = torch.tensor([0, 0, 1, 1, 1, 2, 0])  # category 2 has one image
    scored, folds = folds_for(targets)
    assert scored.tolist() == [0, 1, 2, 3, 4, 6]
    for fold in np.unique(folds):
        held = set(scored[folds == fold].tolist())
        for category in (0, 1):
            rest = [i for i in range(len(targets)) if int(targets[i]) == category and i not in held]
            assert rest, f"fold {fold} holds out every image of category {category}"
    assert folds_for(torch.tensor([0, 1, 2]))[0].size == 0


def test_folds_hold_out_the_same_share_of_every_category():
    _, folds = folds_for(torch.arange(40) % 4)  # 10 images per category
    assert sorted(np.unique(folds).tolist()) == list(range(10))
    targets = torch.tensor([0] * 2 + [1] * 6)  # the smallest category has two images: two folds
    scored, folds = folds_for(targets)
    assert sorted(np.unique(folds).tolist()) == [0, 1]
    for fold in (0, 1):
        held = targets[torch.from_numpy(scored[folds == fold])]
        assert (held == 0).sum() == 1 and (held == 1).sum() == 3


def _features(rng: np.random.Generator, per_class: int, views: int, separation: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[V, N, D] pooled-like (positive) features of 3 classes around distinct centres."""
    centres = rng.uniform(0, 1, size=(3, 32)) * separation
    labels = np.repeat(np.arange(3), per_class)
    base = centres[labels] + rng.uniform(0, 1, size=(len(labels), 32))
    pooled = np.stack([base + 0.05 * rng.normal(size=base.shape) for _ in range(views)])
    return torch.from_numpy(np.abs(pooled)).float(), torch.from_numpy(labels)


def test_a_tie_keeps_the_plain_probe():
    pooled, targets = _features(np.random.default_rng(0), per_class=3, views=2, separation=20.0)
    selection = choose_head(pooled, targets, 3, multilabel=False, c=10.0)
    assert all(accuracy == 1.0 for accuracy, _ in selection.table.values())  # every candidate is perfect
    assert selection.candidate == CANDIDATES[0] and CANDIDATES[0].name == "probe"
    assert selection.logits.shape == (9, 3) and selection.scored.tolist() == list(range(9))


def test_a_later_candidate_is_chosen_only_when_clearly_more_often_right():
    # the original views are noisy, the augmented ones close to their class: a head fitted on
    # every view is right more often out of fold (scored on the original views)
    chosen = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        labels = np.repeat(np.arange(3), 6)
        clean = (rng.uniform(0, 1, size=(3, 32)) * 2)[labels]
        views = [clean + rng.uniform(0, 6, size=clean.shape)]
        views += [clean + 0.2 * rng.uniform(0, 1, size=clean.shape) for _ in range(3)]
        selection = choose_head(torch.from_numpy(np.stack(views)).float(), torch.from_numpy(labels), 3,
                                multilabel=False, c=10.0)
        expected = CANDIDATES[0]
        for candidate in CANDIDATES[1:]:
            gain = selection.table[candidate.name][0] - selection.table[expected.name][0]
            if gain >= MARGIN - 1e-6 and gain * len(labels) >= MARGIN_IMAGES - 0.01:
                expected = candidate
        assert selection.candidate == expected, (seed, selection.table)
        chosen.append(expected.name)
    assert "probe-views" in chosen


def test_the_temperature_recovers_a_known_scale():
    rng = np.random.default_rng(2)
    true_logits = torch.from_numpy(rng.normal(size=(2000, 5)) * 3).float()
    targets = torch.multinomial(torch.softmax(true_logits, 1), 1).squeeze(1)
    assert fit_temperature(true_logits * 4, targets, multilabel=False) == pytest.approx(4.0, rel=0.1)
    assert fit_temperature(true_logits / 3, targets, multilabel=False) == pytest.approx(1 / 3, rel=0.1)
    assert fit_temperature(true_logits[:0], targets[:0], multilabel=False) == 1.0


def test_a_handful_of_images_cannot_push_the_temperature_to_an_extreme():
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    t = fit_temperature(logits, torch.tensor([0, 1]), multilabel=False)
    assert 0.2 < t < 1.0 and math.isfinite(t)


def test_cross_fitted_probabilities_are_probabilities_of_every_scored_image():
    rng = np.random.default_rng(3)
    logits = torch.from_numpy(rng.normal(size=(12, 3))).float()
    targets = torch.arange(12) % 3
    folds = np.arange(12) % 4
    probabilities = cross_fitted_probabilities(logits, targets, folds, multilabel=False)
    assert probabilities.shape == (12, 3) and np.allclose(probabilities.sum(1), 1.0, atol=1e-5)
    assert (probabilities.argmax(1) == logits.argmax(1).numpy()).all()  # a temperature never changes the ranking
    multilabel = cross_fitted_probabilities(logits, (torch.rand(12, 3) > 0.5).float(), folds, multilabel=True)
    assert ((multilabel > 0) & (multilabel < 1)).all()


def test_a_per_image_prior_holds_the_temperature_of_a_few_images_nearer_one():
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    targets = torch.tensor([0, 1, 0, 1])
    plain = fit_temperature(logits, targets, multilabel=False)
    held = fit_temperature(logits, targets, multilabel=False, prior_per_image=0.25)
    assert plain < held <= 1.0  # all right: the data asks for sharper, the prior resists more


def test_fine_tuning_is_kept_unless_the_linear_head_wins_on_both_counts():
    from trainer.classification.train import _keep_finetuning

    # (accuracy, -log loss) on the held-out images
    assert _keep_finetuning((0.3, -1.84), (0.5, -1.91))  # fewer right, but a lower log loss
    assert _keep_finetuning((0.7, -1.50), (0.5, -1.40))  # more right, a higher log loss
    assert _keep_finetuning((0.5, -1.0), (0.5, -1.0))  # a tie
    assert not _keep_finetuning((0.5, -1.2), (0.5, -1.0))  # as many right, a higher log loss
    assert not _keep_finetuning((0.4, -1.2), (0.5, -1.0))


def test_a_split_pass_right_on_every_held_out_image_is_sharpened_by_the_linear_evidence():
    held, right = torch.tensor([[3.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 1])  # all right: T only falls
    rng = np.random.default_rng(4)
    targets = torch.arange(40) % 2
    linear = torch.from_numpy(rng.normal(size=(40, 2)) * 0.2).float()
    linear[torch.arange(40), targets] += 1.5  # a confident, separable linear head out of fold
    alone = fit_temperature(held, right, multilabel=False, prior_per_image=0.25)
    linear_t = fit_temperature(linear, targets, multilabel=False)
    assert split_temperature(held, right, False) == alone  # no linear evidence: the held-out fit
    sharpened = split_temperature(held, right, False, linear, targets, scale=2.0)
    assert sharpened < alone and sharpened == pytest.approx(2.0 * linear_t)  # carried to the larger logits
    # one held-out image wrong: the held-out log loss has a minimum of its own and decides alone
    wrong = torch.tensor([0, 0])
    assert split_temperature(held, wrong, False, linear, targets, scale=2.0) == \
        fit_temperature(held, wrong, multilabel=False, prior_per_image=0.25)
    # the linear evidence only sharpens: carried to far larger logits its T is above the held-out fit
    assert split_temperature(held, right, False, linear, targets, scale=100.0) == alone
    assert split_temperature(held, right, False, linear, targets, scale=0.0) == alone  # no scale measured
    # multilabel: right means every label on the right side of 0.5
    multi_truth = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    multi_targets = (targets[:, None] == torch.arange(2)).float()
    multi_alone = fit_temperature(held - 1.5, multi_truth, multilabel=True, prior_per_image=0.25)
    multi_linear = multi_targets * 6 - 3
    assert split_temperature(held - 1.5, multi_truth, True, multi_linear, multi_targets) < multi_alone
    assert split_temperature(held - 1.5, 1 - multi_truth, True, multi_linear, multi_targets) == \
        fit_temperature(held - 1.5, 1 - multi_truth, multilabel=True, prior_per_image=0.25)


def test_the_logit_scale_ignores_what_a_softmax_ignores():
    logits = torch.tensor([[1.0, -1.0], [2.0, 0.0]])
    assert logit_scale(logits, multilabel=False) == pytest.approx(1.0)  # each row's mean taken away
    assert logit_scale(logits * 3 + 5, multilabel=False) == pytest.approx(3.0)
    assert logit_scale(logits, multilabel=True) == pytest.approx(math.sqrt(1.5))  # sigmoids: about 0
    assert logit_scale(logits[:0], multilabel=False) == 0.0


def test_cross_fitted_probabilities_fit_each_fold_with_the_rows_outside_it():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    targets = torch.tensor([0, 1, 0, 1])
    seen: list[list[bool]] = []

    def temperature(use: np.ndarray) -> float:
        seen.append(use.tolist())
        return 0.5

    probabilities = cross_fitted_probabilities(logits, targets, np.array([0, 1, 0, 1]), multilabel=False,
                                               temperature=temperature)
    assert seen == [[False, True, False, True], [True, False, True, False]]
    assert np.allclose(probabilities[0], torch.softmax(logits[0] / 0.5, 0).numpy())
