"""The owners file: team -> services, read safely; anything else is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from paths import SAMPLE

from orchscan.collectors.owners import OwnersError, TeamPatterns, load_owners


def test_teams_list_names_and_globs_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "owners.yaml"
    path.write_text(
        "payments: [payment, 'payment-*']\nfulfilment:\n  - inventory\n  - shipping\nsearch: search\n"
    )
    owners = load_owners(path)
    assert owners.source == str(path)
    assert owners.teams == (
        TeamPatterns("payments", ("payment", "payment-*")),
        TeamPatterns("fulfilment", ("inventory", "shipping")),
        TeamPatterns("search", ("search",)),
    )


def test_json_is_read_as_well(tmp_path: Path) -> None:
    path = tmp_path / "owners.json"
    path.write_text('{"web": ["storefront", "api-*"]}')
    assert load_owners(path).teams == (TeamPatterns("web", ("storefront", "api-*")),)


def test_the_sample_landscape_has_an_owners_file() -> None:
    teams = {team.team: team.patterns for team in load_owners(SAMPLE / "owners.yaml").teams}
    assert teams["checkout"] == ("orders", "mobile-bff") and "shop-*" in teams["web"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- payment\n- inventory\n", "expected a mapping of team names to services"),
        ("", "expected a mapping of team names to services"),
        ("payments: []\n", "team 'payments' must list its services"),
        ("payments: {payment: 1}\n", "team 'payments' must list its services"),
        ("payments: [payment, 7]\n", "team 'payments' lists 7"),
        ("payments: [payment, '  ']\n", "team 'payments' lists '  '"),
        ("1: [payment]\n", "team names must be non-empty text, got 1"),
        ("payments: [payment\n", "malformed YAML"),
        ("payments: !!python/object:os.system [payment]\n", "malformed YAML"),
    ],
)
def test_a_file_of_another_shape_is_refused_with_its_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "owners.yaml"
    path.write_text(text)
    with pytest.raises(OwnersError, match=message) as raised:
        load_owners(path)
    assert str(raised.value).startswith(f"{path}: ")


def test_an_alias_bomb_or_a_huge_file_is_refused_before_it_is_walked(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(OwnersError, match="alias bomb"):
        load_owners(bomb)
    huge = tmp_path / "huge.yaml"
    huge.write_text("team: [" + ", ".join(f"service-{i}" for i in range(200_000)) + "]\n")
    with pytest.raises(OwnersError, match="more than the limit"):
        load_owners(huge)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(OwnersError, match="cannot read the owners file"):
        load_owners(tmp_path / "absent.yaml")
