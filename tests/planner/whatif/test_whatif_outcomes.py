"""What-if tells apart why a scenario has no plan: proved infeasible, no plan within the
time limit, data missing (and any other error)."""

from __future__ import annotations

import pytest
from greenepoch.data.errors import (
    CatalogError,
    DataError,
    InfeasibleError,
    NoSolutionError,
    RequestError,
)
from greenepoch.planner.cli.whatif_cmd import whatif_tables
from greenepoch.planner.whatif import outcomes, results_frame, status_of
from whatif_rows import row

WHY = {
    "infeasible": "infeasible: the carbon threshold excludes every slot",
    "no_solution": "the highs solver found no plan within the time limit of 1 s",
    "data_missing": "no data between 2019-01-01 and 2019-01-08",
    "error": "zone 'XX' is not in the catalog",
}


def mixed_rows():
    rows = [row(0, 5.0, zones="DE")]
    for i, (status, message) in enumerate(WHY.items(), start=1):
        for k in range(i):  # 1 infeasible, 2 no_solution, 3 data_missing, 4 error
            r = row(10 * i + k, None, zones=f"Z{i}")
            r.update(status=status, message=f"{message} ({k})")
            rows.append(r)
    return results_frame(rows)


@pytest.mark.parametrize(("exc", "status"), [
    (InfeasibleError("x"), "infeasible"), (NoSolutionError("x"), "no_solution"),
    (DataError("x"), "data_missing"), (RequestError("x"), "error"),
    (CatalogError("x"), "error"),
])
def test_each_error_has_its_row_status(exc, status) -> None:
    assert status_of(exc) == status


def test_outcomes_count_each_reason_apart() -> None:
    table = outcomes(mixed_rows())
    assert table["status"].tolist() == ["infeasible", "no_solution", "data_missing", "error"]
    assert table["rows"].tolist() == [1, 2, 3, 4]
    assert table["message"].tolist() == [f"{m} (0)" for m in WHY.values()]
    assert table["first"].tolist() == [f"Z{i} 2023-01-01T00:00:00Z" for i in range(1, 5)]
    assert "time limit" in table.set_index("status").loc["no_solution", "outcome"]


def test_outcomes_is_empty_when_every_row_planned() -> None:
    assert outcomes(results_frame([row(0, 5.0), row(1, 4.0, zones="GB")])).empty


def test_cli_tables_show_the_three_reasons_on_their_own_lines() -> None:
    text = whatif_tables(mixed_rows())
    block = text.split("10 scenario(s) without a plan:\n")[1].splitlines()
    assert [line.split()[:2] for line in block] == [
        ["infeasible", "1"], ["no_solution", "2"], ["data_missing", "3"], ["error", "4"]]
    assert "proved infeasible" in block[0] and "no plan within the time limit" in block[1]
    assert "data missing" in block[2]
