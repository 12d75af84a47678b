"""Tests of the region catalog (planner.regions) and the ``greenepoch regions`` command."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from greenepoch.data.errors import CatalogError
from greenepoch.data.regions import (
    CLOUDS,
    Region,
    load_catalog,
    resolve_zone,
    resolve_zones,
    zones_on,
)
from greenepoch.planner.cli.regions_cmd import regions

REQUIRED_ZONES = [
    "AU-NSW", "AU-VIC", "BR-CS", "CA-ON", "CL-SEN", "DE", "ES", "GB", "IN-WE", "JP-TK",
    "KR", "NO", "SG", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS", "US-TEX-ERCO", "ZA",
]
SUMMARY_KEYS = ["id", "name", "country", "timezone", "lat", "lon", "aws", "gcp", "azure"]
# `greenepoch regions` adds where each zone has data (embedded climatology, real exports)
COMMAND_KEYS = [*SUMMARY_KEYS, "data"]


# --- shipped catalog ----------------------------------------------------------------


def test_catalog_covers_required_zones() -> None:
    catalog = load_catalog()
    missing = [z for z in REQUIRED_ZONES if z not in catalog]
    assert missing == []
    assert all(isinstance(r, Region) and r.id == zid for zid, r in catalog.items())


def test_shipped_file_is_in_data_folder() -> None:
    shipped = Path(__file__).resolve().parents[2] / "data" / "regions.toml"
    assert shipped.is_file()
    assert load_catalog(shipped) == load_catalog()


def test_cloud_region_names_are_unique_across_catalog() -> None:
    names = [
        name.lower()
        for region in load_catalog().values()
        for cloud in CLOUDS
        for name in region.cloud_regions(cloud)
    ]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == []
    zone_ids = {z.lower() for z in load_catalog()}
    assert zone_ids.isdisjoint(names)


def test_every_cloud_region_resolves_to_its_own_zone() -> None:
    for region in load_catalog().values():
        for name in region.cloud_regions():
            assert resolve_zone(name) == region.id, name


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("eu-central-1", "DE"),
        ("europe-west3", "DE"),
        ("germanywestcentral", "DE"),
        ("europe-north1", "FI"),
        ("eu-north-1", "SE"),
        ("us-east-1", "US-MIDA-PJM"),
        ("us-east-2", "US-MIDA-PJM"),
        ("us-east4", "US-MIDA-PJM"),
        ("eastus2", "US-MIDA-PJM"),
        ("us-central1", "US-MIDW-MISO"),
        ("eu-west-2", "GB"),
        ("uksouth", "GB"),
        ("ap-southeast-1", "SG"),
        ("southeastasia", "SG"),
        ("ap-northeast-1", "JP-TK"),
        ("asia-northeast3", "KR"),
        ("ap-south-1", "IN-WE"),
        ("centralindia", "IN-WE"),
        ("australia-southeast1", "AU-NSW"),
        ("australia-southeast2", "AU-VIC"),
        ("australiasoutheast", "AU-VIC"),
        ("sa-east-1", "BR-CS"),
        ("northamerica-northeast2", "CA-ON"),
        ("canadacentral", "CA-ON"),
        ("ca-central-1", "CA-QC"),  # Montréal, not Toronto
        ("southamerica-west1", "CL-SEN"),
        ("europe-southwest1", "ES"),
        ("eu-south-2", "ES"),
        ("norwayeast", "NO"),
        ("us-west-1", "US-CAL-CISO"),
        ("us-south1", "US-TEX-ERCO"),
        ("southcentralus", "US-TEX-ERCO"),
        ("af-south-1", "ZA"),
        ("africa-south1", "ZA"),
    ],
)
def test_resolve_known_cloud_regions(name: str, zone: str) -> None:
    assert resolve_zone(name) == zone


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("EU-CENTRAL-1", "DE"),
        ("Europe-North1", "FI"),
        ("de", "DE"),
        ("us-cal-ciso", "US-CAL-CISO"),
        ("  gb ", "GB"),
        ("Germany West Central", "DE"),  # Azure display name
    ],
)
def test_resolve_is_case_and_space_insensitive(name: str, zone: str) -> None:
    assert resolve_zone(name) == zone


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(CatalogError) as info:
        resolve_zone("eu-centrl-1")
    message = str(info.value)
    assert "unknown zone or cloud region 'eu-centrl-1'" in message
    assert "did you mean eu-central-1?" in message
    assert "greenepoch regions" in message


def test_unknown_name_without_close_match_still_says_what_to_do() -> None:
    with pytest.raises(CatalogError, match="unknown zone or cloud region 'qqqqqq'") as info:
        resolve_zone("qqqqqq")
    assert "did you mean" not in str(info.value)
    assert "Run 'greenepoch regions' to list them" in str(info.value)


def test_empty_name_is_rejected() -> None:
    with pytest.raises(CatalogError, match="empty zone name"):
        resolve_zone("  ")


def test_resolve_zones_keeps_order_and_drops_duplicates() -> None:
    assert resolve_zones("GB, eu-central-1,DE,europe-north1") == ["GB", "DE", "FI"]
    assert resolve_zones(["us-east-1", "US-MIDA-PJM,uksouth"]) == ["US-MIDA-PJM", "GB"]


def test_resolve_zones_all() -> None:
    everything = list(load_catalog())
    assert resolve_zones("all") == everything
    assert resolve_zones("ALL") == everything
    with_first = resolve_zones("GB,all")
    assert with_first[0] == "GB"
    assert sorted(with_first) == sorted(everything)
    assert len(with_first) == len(everything)


def test_resolve_zones_errors() -> None:
    with pytest.raises(CatalogError, match="no zones given"):
        resolve_zones(" , ")
    with pytest.raises(CatalogError, match="did you mean us-east-1"):
        resolve_zones("DE,us-eats-1")


def test_electricity_market_defaults_to_id() -> None:
    catalog = load_catalog()
    assert catalog["DE"].electricity_market == "DE-LU"
    assert catalog["BR-CS"].electricity_market == "BR-SP"
    assert catalog["CL-SEN"].electricity_market == "CL-SIC"
    assert catalog["GB"].electricity_market == "GB"
    assert catalog["US-CAL-CISO"].electricity_market == "US-CAL-CISO"


def test_region_is_frozen_with_tuples() -> None:
    de = load_catalog()["DE"]
    assert isinstance(de.aws, tuple)
    assert isinstance(de.gcp, tuple)
    assert isinstance(de.azure, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        de.name = "Deutschland"  # type: ignore[misc]


def test_load_catalog_returns_a_copy() -> None:
    first = load_catalog()
    first.pop("DE")
    assert "DE" in load_catalog()


def test_zones_on_cloud() -> None:
    aws = zones_on("aws")
    assert aws
    assert all(zone.aws for zone in aws)
    assert "US-NY-NYIS" not in {zone.id for zone in aws}
    assert len(zones_on()) == len(load_catalog())
    with pytest.raises(CatalogError, match="unknown cloud 'ibm'"):
        zones_on("ibm")


# --- malformed catalogs -------------------------------------------------------------

GOOD_ZONE = """
[[zone]]
id = "XX"
name = "Test zone"
country = "DE"
timezone = "Europe/Berlin"
latitude = 50.0
longitude = 8.0
aws = ["test-1"]
gcp = []
azure = ["testazure"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "regions.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_small_valid_catalog_loads_and_resolves(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_ZONE)
    catalog = load_catalog(path)
    assert list(catalog) == ["XX"]
    assert catalog["XX"].electricity_market == "XX"
    assert resolve_zone("TEST-1", catalog=path) == "XX"
    assert resolve_zones("xx,testazure", catalog=path) == ["XX"]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            GOOD_ZONE.replace('timezone = "Europe/Berlin"\n', ""),
            ["zone 'XX'", "missing key(s) 'timezone'"],
        ),
        (
            GOOD_ZONE.replace('id = "XX"\n', ""),
            ["zone #1", "missing key(s) 'id'"],
        ),
        (
            GOOD_ZONE.replace("latitude = 50.0", "latitude = 95.0"),
            ["zone 'XX'", "'latitude' must be between -90 and 90", "95.0"],
        ),
        (
            GOOD_ZONE.replace("longitude = 8.0", "longitude = -181"),
            ["zone 'XX'", "'longitude' must be between -180 and 180", "-181"],
        ),
        (
            GOOD_ZONE.replace("latitude = 50.0", 'latitude = "50N"'),
            ["zone 'XX'", "'latitude' must be a number"],
        ),
        (
            GOOD_ZONE.replace("Europe/Berlin", "Europe/Frankfurt"),
            ["zone 'XX'", "'timezone' 'Europe/Frankfurt' is not an IANA time zone"],
        ),
        (
            GOOD_ZONE.replace('country = "DE"', 'country = "DEU"'),
            ["zone 'XX'", "'country' must be an ISO 3166-1 alpha-2 code", "'DEU'"],
        ),
        (
            GOOD_ZONE.replace('aws = ["test-1"]', 'aws = "test-1"'),
            ["zone 'XX'", "'aws' must be a list of region names"],
        ),
        (
            GOOD_ZONE.replace("azure =", "azur ="),
            ["zone 'XX'", "unknown key 'azur'", "did you mean 'azure'?"],
        ),
        (
            GOOD_ZONE + GOOD_ZONE.replace('id = "XX"', 'id = "YY"').replace('"test-1"', '"x-2"'),
            [
                "zone 'YY'",
                "'azure' name 'testazure' is already used by zone 'XX'",
                "exactly one zone",
            ],
        ),
        (
            GOOD_ZONE + GOOD_ZONE.replace('"test-1"', '"x-2"').replace('"testazure"', '"y"'),
            ["zone 'XX'", "duplicate id"],
        ),
        (
            GOOD_ZONE.replace('aws = ["test-1"]', 'aws = ["xx"]'),
            ["'aws' name 'xx' is already used by zone id 'XX'"],
        ),
        ("", ["no zones; add at least one [[zone]] table"]),
        ("[[zone]\nid = 1", ["is not valid TOML"]),
        ('title = "x"\n' + GOOD_ZONE, ["unknown top-level key(s) title"]),
    ],
)
def test_malformed_catalog_is_rejected(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.toml")


# --- CLI ----------------------------------------------------------------------------


def test_regions_command_table() -> None:
    result = CliRunner().invoke(regions, [])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == COMMAND_KEYS
    assert any(line.startswith("DE ") and "eu-central-1" in line for line in lines)
    assert f"{len(load_catalog())} zone(s): " in result.output


def test_regions_command_json_with_cloud_filter() -> None:
    result = CliRunner().invoke(regions, ["--json", "--cloud", "GCP"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows
    assert all(list(row) == COMMAND_KEYS for row in rows)
    assert all(row["gcp"] for row in rows)
    assert "FI" in {row["id"] for row in rows}
    assert "NO" not in {row["id"] for row in rows}  # no GCP region in Norway


def test_regions_command_rejects_unknown_cloud() -> None:
    result = CliRunner().invoke(regions, ["--cloud", "ibm"])
    assert result.exit_code == 2
    assert "ibm" in result.output


def test_main_cli_regions() -> None:
    from greenepoch.planner.cli.main import cli

    result = CliRunner().invoke(cli, ["regions"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == COMMAND_KEYS
    assert "US-MIDA-PJM" in result.output


def test_main_cli_regions_json() -> None:
    from greenepoch.planner.cli.main import cli

    result = CliRunner().invoke(cli, ["regions", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["id"] for row in rows] == list(load_catalog())
    for row in rows:
        assert list(row) == COMMAND_KEYS
        assert isinstance(row["lat"], float) and isinstance(row["lon"], float)
        assert all(isinstance(row[c], list) for c in CLOUDS)
    de = next(row for row in rows if row["id"] == "DE")
    assert "eu-central-1" in de["aws"]


# --- real data ----------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.skipif(not os.environ.get("GREENEPOCH_DATA"), reason="GREENEPOCH_DATA not set")
def test_catalog_ids_match_shared_exports() -> None:
    root = Path(os.environ["GREENEPOCH_DATA"])
    exports = root / "electricitymaps"
    if not exports.is_dir():
        pytest.skip(f"{exports} not found")
    catalog = load_catalog()
    for path in sorted(exports.glob("*_hourly.csv")):
        zone_id = path.name.split("_")[0]
        assert zone_id in catalog, path.name
        with path.open(encoding="utf-8") as handle:
            header = handle.readline().strip().split(",")
            first = dict(zip(header, handle.readline().strip().split(","), strict=True))
        assert first["Zone Id"] == zone_id
    prices = root / "prices"
    for zone_id in ("DE", "BR-CS", "CL-SEN"):
        market = catalog[zone_id].electricity_market
        assert list(prices.glob(f"{market}_*_prices.csv")), market
