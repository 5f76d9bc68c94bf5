"""Crisis resources a clinic lists per country, and the country of a time zone."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from string import ascii_uppercase


@dataclass(frozen=True)
class Resource:
    name: str
    contact: str
    note: str = ""


@dataclass(frozen=True)
class CrisisResources:
    default: tuple[Resource, ...]
    by_country: dict[str, tuple[Resource, ...]]

    def for_country(self, country: str | None) -> list[Resource]:
        """The list for an ISO 3166 country code (any case), else the default list."""
        key = (country or "").strip().upper()
        return list(self.by_country.get(key, self.default))


_RESOURCE_FIELDS = {"name", "contact", "note"}


def _parse_resources(raw: object, where: str, problems: list[str]) -> tuple[Resource, ...]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table holding resources = [ ... ]")
        return ()
    for unknown in sorted(set(raw) - {"resources"}):
        problems.append(f"{where}: unknown field {unknown!r}")
    entries = raw.get("resources")
    if not isinstance(entries, list) or not entries:
        problems.append(f"{where}: resources must be a non-empty list")
        return ()
    parsed: list[Resource] = []
    for index, entry in enumerate(entries, start=1):
        here = f"{where} resource {index}"
        if not isinstance(entry, dict):
            problems.append(f"{here}: must be {{ name = ..., contact = ... }}")
            continue
        before = len(problems)
        for unknown in sorted(set(entry) - _RESOURCE_FIELDS):
            problems.append(f"{here}: unknown field {unknown!r}")
        for field in ("name", "contact"):
            value = entry.get(field)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{here}: {field} is missing")
        note = entry.get("note", "")
        if not isinstance(note, str):
            problems.append(f"{here}: note must be text")
        if len(problems) == before:
            parsed.append(Resource(entry["name"].strip(), entry["contact"].strip(), note.strip()))
    return tuple(parsed)


def load_resources(path: Path) -> CrisisResources:
    """Read and check the resources file; raise ValueError with one line per problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: not found") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path.name}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path.name}: not valid TOML: {exc}") from None
    problems = [
        f"{path.name}: unknown top-level table {unknown!r}"
        for unknown in sorted(set(data) - {"default", "country"})
    ]
    if "default" in data:
        default = _parse_resources(data["default"], f"{path.name} [default]", problems)
    else:
        problems.append(f"{path.name}: [default] is missing (shown when a country has no entry)")
        default = ()
    countries = data.get("country", {})
    if not isinstance(countries, dict):
        problems.append(f"{path.name}: country must be tables like [country.US]")
        countries = {}
    by_country: dict[str, tuple[Resource, ...]] = {}
    known = _iso_countries()
    for code, raw in countries.items():
        where = f"{path.name} [country.{code}]"
        if code not in known:
            problems.append(f"{where}: not an ISO 3166 country code (two capitals: US, GB, DE)")
            continue
        by_country[code] = _parse_resources(raw, where, problems)
    if problems:
        raise ValueError("\n".join(problems))
    return CrisisResources(default=default, by_country=by_country)


def _tzdata_text(name: str) -> str | None:
    try:
        return resources.files("tzdata.zoneinfo").joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None


def _table_rows(text: str | None) -> list[list[str]]:
    if text is None:
        return []
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@cache
def _iso_countries() -> frozenset[str]:
    # tzdata's iso3166.tab is the list of codes; it catches "UK" for GB, which a pattern would
    # let through to never match. Without the file, any two capitals pass.
    codes = frozenset(row[0] for row in _table_rows(_tzdata_text("iso3166.tab")))
    return codes or frozenset(
        f"{first}{second}" for first in ascii_uppercase for second in ascii_uppercase
    )


@cache
def _country_by_zone() -> dict[str, str]:
    # zone1970.tab lists every country a zone covers ("DE,DK,NO,SE,SJ" for Europe/Berlin),
    # the most populous first. zone.tab gives one country per zone and also lists zones that
    # are now links (Europe/Copenhagen: DK), so it wins where present; zone1970.tab covers a
    # future tzdata that drops the deprecated zone.tab.
    countries = {row[2]: row[0].split(",")[0] for row in _table_rows(_tzdata_text("zone1970.tab"))}
    countries.update({row[2]: row[0] for row in _table_rows(_tzdata_text("zone.tab"))})
    # Old names patients still type ("US/Eastern", "Asia/Calcutta") are links ("L target
    # name") in tzdata.zi. Names without an area ("CET", "GB") are not countries' names.
    for line in (_tzdata_text("tzdata.zi") or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L" and "/" in parts[2] and parts[2] not in countries:
            country = countries.get(parts[1])
            if country is not None and not parts[2].startswith("Etc/"):
                countries[parts[2]] = country
    return countries


def country_of_timezone(zone: str) -> str | None:
    """The ISO 3166 country of an IANA time zone ("Europe/Berlin" -> "DE"), or None."""
    return _country_by_zone().get(zone.strip())


def is_country_code(code: str) -> bool:
    """Whether `code` is an ISO 3166 country code (two capitals)."""
    return code in _iso_countries()
