"""The one percentile rule of the eval, the analytics and the benchmarks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.stats import percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7.0], 99, 7.0),
        ([float(v) for v in range(1, 11)], 50, 5.0),  # nearest rank, not 5.5
        ([float(v) for v in range(1, 11)], 90, 9.0),
        ([float(v) for v in range(1, 11)], 99, 10.0),
        ([3.0, 1.0, 2.0], 50, 2.0),  # order of the input does not matter
        ([float(v) for v in range(1, 101)], 99, 99.0),
    ],
)
def test_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50))
def test_a_percentile_is_an_observed_value_and_p90_is_not_below_the_median(
    values: list[float],
) -> None:
    p50, p90 = percentile(values, 50), percentile(values, 90)
    assert p50 in values and p90 in values
    assert p50 is not None and p90 is not None and p50 <= p90
