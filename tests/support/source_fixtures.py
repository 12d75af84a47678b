"""A small export folder in the shared layout (electricitymaps/, prices/), written by
the source, pipeline and what-if tests so they run without the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2023-03-01T00:00Z")
DAYS = 10
ESTIMATED = pd.Timestamp("2023-03-02T05:00Z")  # the one hour DE's file marks estimated
HEADER = ("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
          "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
          "Data Source,Data Estimated,Data Estimation Method\n")


def write_exports(folder: Path, days: int = DAYS) -> Path:
    """Electricity Maps exports for DE (380 g/kWh on average) and GB (190), hourly over
    ``days`` days from START with a daily cycle, and a price file for DE's market
    (DE-LU, 50-73 USD/MWh) but none for GB's."""
    exports = folder / "electricitymaps"
    exports.mkdir(parents=True)
    times = pd.date_range(START, periods=days * 24, freq="1h")
    for zone, base in (("DE", 380.0), ("GB", 190.0)):
        rows = []
        for i, t in enumerate(times):
            value = base + 60 * np.sin(2 * np.pi * i / 24)
            estimated = "true" if zone == "DE" and t == ESTIMATED else "false"
            rows.append(f"{t.strftime('%Y-%m-%d %H:%M:%S')},X,{zone},{zone},{value:.2f},"
                        f"{value + 40:.2f},50,40,test,{estimated},\n")
        (exports / f"{zone}_2023_hourly.csv").write_text(HEADER + "".join(rows),
                                                         encoding="utf-8")
    prices = folder / "prices"
    prices.mkdir()
    lines = [f"{t.strftime('%Y-%m-%d %H:%M:%S')},{50 + (i % 24):.1f}\n"
             for i, t in enumerate(times)]
    (prices / "DE-LU_2023_prices.csv").write_text(
        "Datetime (UTC),Price (USD/MWh)\n" + "".join(lines), encoding="utf-8")
    return folder
