"""The GPU pool's autoscale formula, taken from infra/app/batch.bicep and run on $PendingTasks scenarios."""
from __future__ import annotations

import isodate
import pytest

from tests.infra import batch_formula as bf
from tests.infra import bicep_source as b

BATCH = b.INFRA / "app" / "batch.bicep"
MINUTE = 60 // bf.SAMPLE_PERIOD_SECONDS  # samples per minute


def formula_lines() -> list[str]:
    """The formula's statements as written, each Bicep interpolation kept as ${expr}."""
    decl = b.declaration(b.parse(BATCH), "var", "autoScaleFormula")
    assert decl.value is not None and b.text(decl.value.named_children[0]) == "join"
    items, separator = decl.value.named_children[1].named_children
    assert b.string_value(separator) == "\n"
    return [b.string_value(item, interpolate=lambda e: "${" + e + "}") for item in b.array_items(items)]


def render(max_nodes: int, use_spot: bool) -> str:
    """The formula Batch receives for these parameter values; fails on any other interpolation."""
    values = {"maxNodes": str(max_nodes), "useSpotNodes ? 1 : 0": "1" if use_spot else "0"}
    decl = b.declaration(b.parse(BATCH), "var", "autoScaleFormula")
    items = decl.value.named_children[1].named_children[0]

    def interpolate(expression: str) -> str:
        if expression not in values:
            raise AssertionError(f"formula interpolates {expression!r}; teach render() its value")
        return values[expression]

    return "\n".join(b.string_value(item, interpolate=interpolate) for item in b.array_items(items))


def targets(pending: list[float], *, max_nodes: int = 4, use_spot: bool = True) -> tuple[float, float, str]:
    result = bf.evaluate(render(max_nodes, use_spot), pending)
    return result["$TargetLowPriorityNodes"], result["$TargetDedicatedNodes"], result["$NodeDeallocationOption"]


def test_statements_read_pending_tasks_over_a_window_and_set_every_target() -> None:
    lines = formula_lines()
    assert all(line.rstrip().endswith(";") for line in lines)
    text = "\n".join(lines)
    assert "$PendingTasks.GetSamplePercent(TimeInterval_Minute * 5)" in text
    assert "avg($PendingTasks.GetSample(TimeInterval_Minute * 5))" in text
    assert "min(${maxNodes}, $tasks)" in text, "the node count must be capped by the maxNodes parameter"
    targets_set = [line.split("=", 1)[0].strip() for line in lines]
    assert {"$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption"} <= set(targets_set)
    assert "$NodeDeallocationOption = taskcompletion;" in lines


def test_formula_parses_completely() -> None:
    statements = bf.parse(render(2, True))
    assert [target for target, _ in statements][-3:] == [
        "$TargetLowPriorityNodes", "$TargetDedicatedNodes", "$NodeDeallocationOption",
    ]


def test_no_tasks_means_zero_nodes() -> None:
    assert targets([0] * 10 * MINUTE) == (0, 0, "taskcompletion")


def test_no_tasks_on_a_new_pool_means_zero_nodes() -> None:
    assert targets([0]) == (0, 0, "taskcompletion")
    assert targets([]) == (0, 0, "taskcompletion")


@pytest.mark.parametrize(("tasks", "expected"), [(1, 1), (3, 3), (4, 4), (10, 4)])
def test_steady_tasks_get_one_spot_node_each_up_to_the_cap(tasks: int, expected: int) -> None:
    low_priority, dedicated, _ = targets([tasks] * 10 * MINUTE, max_nodes=4)
    assert (low_priority, dedicated) == (expected, 0)


def test_dedicated_mode_uses_dedicated_nodes_only() -> None:
    assert targets([3] * 10 * MINUTE, max_nodes=4, use_spot=False)[:2] == (0, 3)
    assert targets([0] * 10 * MINUTE, max_nodes=4, use_spot=False)[:2] == (0, 0)


def test_a_new_job_on_a_fresh_pool_scales_up_from_the_latest_sample() -> None:
    # two minutes of history: below 70 % of the 5-minute window, so only the latest sample counts
    assert targets([0] * (2 * MINUTE - 1) + [2])[:2] == (2, 0)


def test_a_job_that_just_arrived_is_not_averaged_away() -> None:
    assert targets([0] * (10 * MINUTE - 1) + [1])[:2] == (1, 0)


def test_after_the_last_task_the_pool_goes_back_to_zero() -> None:
    history = [2] * 10 * MINUTE + [0] * 2 * MINUTE
    low_priority, _, _ = targets(history)
    assert 0 < low_priority <= 2, "within the averaging window the nodes may stay a little longer"
    assert targets(history + [0] * 5 * MINUTE)[:2] == (0, 0)


def test_evaluation_interval_is_at_least_five_minutes() -> None:
    tree = b.parse(BATCH)
    pool = next(body for type_, body in b.all_resources(tree) if type_.startswith("Microsoft.Batch/batchAccounts/pools@"))
    auto_scale = b.get_path(pool, "properties", "scaleSettings", "autoScale")
    interval = isodate.parse_duration(b.string_value(b.get_path(auto_scale, "evaluationInterval")))
    assert interval.total_seconds() >= 300
    assert b.text(b.get_path(auto_scale, "formula")) == "autoScaleFormula"


def test_max_nodes_parameter_is_bounded_and_spot_is_the_default() -> None:
    tree = b.parse(BATCH)
    max_nodes = b.declaration(tree, "param", "maxNodes")
    assert "@minValue(1)" in max_nodes.decorators
    assert b.text(b.declaration(tree, "param", "useSpotNodes").value) == "true"
    main = b.parse(b.INFRA / "main.bicep")
    assert b.text(b.declaration(main, "param", "batchUseSpotNodes").value) == "true"


def test_interpreter_rejects_what_it_does_not_understand() -> None:
    with pytest.raises(bf.FormulaError):
        bf.evaluate("$x = $Unknown;", [0])
    with pytest.raises(bf.FormulaError):
        bf.evaluate("$x = foo(1);", [0])
    with pytest.raises(bf.FormulaError):
        bf.evaluate("$x = 1", [0])  # missing ';'
