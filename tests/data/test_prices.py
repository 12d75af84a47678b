"""Price files (data/prices.py): what a plan's cost and the carbon+cost objective read."""

from __future__ import annotations

from pathlib import Path

import pytest
from greenepoch.data.errors import DataError
from greenepoch.data.prices import MAX_ABS_PRICE, read_price_csv

HEADER = "time,price_usd_per_mwh\n"


def _file(tmp_path: Path, *prices: str) -> Path:
    rows = [f"2023-01-01T{h:02d}:00:00+00:00,{p}\n" for h, p in enumerate(prices)]
    path = tmp_path / "p.csv"
    path.write_text(HEADER + "".join(rows))
    return path


def test_negative_spiky_and_missing_prices_are_read(tmp_path: Path) -> None:
    series = read_price_csv(_file(tmp_path, "-538.8", "8994.1", "", "50"))
    assert series.tolist() == [-538.8, 8994.1, 50.0]  # the empty hour is missing


@pytest.mark.parametrize(("cell", "shown"), [("1e308", "1e\\+308"), ("-2e5", "-200000"),
                                             ("abc", "'abc'"), ("inf", "inf")])
def test_text_and_impossible_prices_are_refused_naming_the_row(
        tmp_path: Path, cell: str, shown: str) -> None:
    with pytest.raises(DataError, match=f"row 3: price {shown} is not a number from "
                                        "-100000 to 100000 USD/MWh"):
        read_price_csv(_file(tmp_path, "50", cell))
    assert MAX_ABS_PRICE == 1e5
