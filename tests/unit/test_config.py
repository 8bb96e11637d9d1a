"""Establishment configuration: the shipped file, defaults, and errors that name file, field and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mis_sync.config import (
    ConfigError,
    Establishment,
    UsernamePolicy,
    discover,
    load_establishment,
)
from mis_sync.schedules import parse_window, spread_schedule

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "include" / "establishments" / "demo-academy.yaml"

MINIMAL = """\
id: {id}
name: Test School
laestab: "3804123"
mis:
  type: file_drop
  connection_id: mis_test
"""


def write(folder: Path, body: str, stem: str = "test-school", suffix: str = ".yaml") -> Path:
    path = folder / f"{stem}{suffix}"
    path.write_text(body, encoding="utf-8")
    return path


def minimal(extra: str = "", stem: str = "test-school") -> str:
    return MINIMAL.format(id=stem) + extra


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_establishment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


def test_shipped_demo_academy_loads() -> None:
    config = load_establishment(DEMO)
    assert config.id == "demo-academy"
    assert config.name == "Demo Academy"
    assert config.laestab == "8814001"
    assert config.country == "england"
    assert config.mis.type == "file_drop"
    assert config.mis.connection_id == "mis_demo_academy"
    assert config.directory.connection_id == "misync_directory"
    assert config.tags == ("demo",)
    assert config.dag_id == "mis_sync__demo_academy"
    m365 = config.targets.microsoft365
    assert m365.enabled is True and m365.connection_id == "msgraph_demo"
    assert m365.tenant_domain == "demo-academy.example" and m365.owners.admins == ("it.admin",)
    assert m365.teams is True
    google = config.targets.google_classroom
    assert google.enabled is True and google.connection_id == "google_demo"
    assert google.domain == "demo-academy.example" and google.owner == "it.admin"
    assert google.group_kinds == ("registration",) and google.course_state == "ACTIVE"


def test_defaults_for_a_minimal_file(tmp_path: Path) -> None:
    config = load_establishment(write(tmp_path, minimal()))
    assert config.schedule is None  # a spread default per school (test_schedules)
    assert config.cron == spread_schedule(config.id, parse_window("01:00", 120))
    assert config.mode == "create"
    assert config.country == "england"
    assert config.owner == "school-it"
    assert config.tags == ()
    assert config.mis.via is None
    assert config.mis.options == {}
    assert config.directory.connection_id == "misync_directory"
    for policy in (config.usernames.pupil, config.usernames.staff):
        assert policy == UsernamePolicy()
        assert policy.pattern == "{first_initial}{last_name}"
        assert policy.max_length == 20
        assert policy.name_source == "preferred"
        assert policy.first_suffix == 1
    assert config.accounts.create_pre_admission is True
    assert config.accounts.include_non_teaching_staff is True
    assert config.safety.min_extract_fraction == 0.8
    assert config.safety.max_suspend_fraction == 0.1
    assert config.safety.max_suspend_count == 50
    assert config.targets.microsoft365.enabled is False


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_establishment(write(tmp_path, minimal()))
    with pytest.raises(ValidationError, match="frozen"):
        config.schedule = "0 2 * * *"  # type: ignore[misc]


def test_yml_extension_loads(tmp_path: Path) -> None:
    config = load_establishment(write(tmp_path, minimal(), suffix=".yml"))
    assert config.id == "test-school"


@pytest.mark.parametrize("laestab", ['"380412"', '"38041234"', '"380412A"', '"380 4123"'])
def test_bad_laestab(tmp_path: Path, laestab: str) -> None:
    path = write(tmp_path, minimal().replace('"3804123"', laestab))
    message = load_error(path)
    assert "laestab: " in message
    assert r"\d{7}" in message


def test_unknown_mis_type_lists_supported_types(tmp_path: Path) -> None:
    path = write(tmp_path, minimal().replace("type: file_drop", "type: simms"))
    message = load_error(path)
    assert "mis.type: " in message
    assert "unknown MIS type 'simms'" in message
    assert "supported: arbor, bromcom," in message and "file_drop" in message


@pytest.mark.parametrize(
    ("mis", "problem"),
    [
        (
            "type: integris",
            "Integris (RM) has no public third-party API: set mis.via to one of wonde, xporter",
        ),
        ("type: wcbs\n  via: xporter", "cannot be reached via 'xporter'; routes: wonde"),
        ("type: file_drop\n  via: wonde", "mis.via is for an MIS name"),
    ],
)
def test_mis_routes_are_checked(tmp_path: Path, mis: str, problem: str) -> None:
    message = load_error(write(tmp_path, minimal().replace("type: file_drop", mis)))
    assert problem in message


@pytest.mark.parametrize(
    ("mis", "source"),
    [
        ("type: arbor", "arbor"),
        ("type: arbor\n  via: wonde", "wonde"),
        ("type: sims\n  via: xporter", "xporter"),
        ("type: seemis\n  via: xporter", "xporter"),
        ("type: isams", "isams_rest"),
        ("type: oneroster_csv", "oneroster_csv"),
    ],
)
def test_mis_route_picks_the_connector(tmp_path: Path, mis: str, source: str) -> None:
    config = load_establishment(write(tmp_path, minimal().replace("type: file_drop", mis)))
    assert config.mis.source == source


def test_sources_table_lists_every_mis_and_route() -> None:
    from mis_sync.connectors.routes import MIS_CATALOGUE, render_sources

    text = render_sources()
    for name in MIS_CATALOGUE:
        assert f"\n{name}" in text
    assert "via scholarpack" in text and "teaching groups: no" in text


def test_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, minimal("colour: red\n")))
    assert "colour: Extra inputs are not permitted" in message


def test_unknown_nested_key_names_the_path(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, minimal("usernames:\n  pupil:\n    max_len: 12\n")))
    assert "usernames.pupil.max_len: Extra inputs are not permitted" in message


@pytest.mark.parametrize("schedule", ["61 * * * *", "every night", "30 1 * *"])
def test_invalid_cron(tmp_path: Path, schedule: str) -> None:
    message = load_error(write(tmp_path, minimal(f'schedule: "{schedule}"\n')))
    assert "schedule: " in message
    assert f"not a valid cron expression: {schedule!r}" in message


def test_valid_custom_cron(tmp_path: Path) -> None:
    config = load_establishment(write(tmp_path, minimal('schedule: "0 5 * * 1-5"\n')))
    assert config.schedule == "0 5 * * 1-5"


def test_id_must_equal_file_stem(tmp_path: Path) -> None:
    path = write(tmp_path, minimal(stem="other-school"), stem="test-school")
    message = load_error(path)
    assert "id: must equal the file name ('test-school'), got 'other-school'" in message


def test_id_must_be_a_slug(tmp_path: Path) -> None:
    path = write(tmp_path, minimal(stem="Test_School"), stem="Test_School")
    message = load_error(path)
    assert "id: String should match pattern" in message


def test_invalid_yaml_gives_line_and_column(tmp_path: Path) -> None:
    body = minimal() + "tags: [demo\nowner: x\n"
    message = load_error(write(tmp_path, body))
    assert "not valid YAML (line 8, column 6)" in message


def test_invalid_yaml_bad_indentation(tmp_path: Path) -> None:
    body = "id: test-school\nname: X\n  laestab: 1\n"
    message = load_error(write(tmp_path, body))
    assert "not valid YAML (line 3, column 10)" in message


@pytest.mark.parametrize("body", ["- a\n- b\n", "just a string\n", "", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, body: str) -> None:
    message = load_error(write(tmp_path, body))
    assert "expected a mapping of settings at the top level" in message


def test_microsoft365_needs_a_domain_and_an_owner(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, minimal("targets:\n  microsoft365:\n    enabled: true\n")))
    assert "targets.microsoft365" in message and "tenant_domain is required" in message
    with_domain = "targets:\n  microsoft365:\n    enabled: true\n    tenant_domain: school.example\n"
    message = load_error(write(tmp_path, minimal(with_domain)))
    assert "owners.admins" in message and "never be left without an owner" in message


def test_microsoft365_templates_are_checked(tmp_path: Path) -> None:
    text = (
        "targets:\n  microsoft365:\n    enabled: true\n    tenant_domain: school.example\n"
        "    owners: {admins: [it.admin]}\n    naming: '{name} {colour}'\n"
    )
    message = load_error(write(tmp_path, minimal(text)))
    assert "targets.microsoft365.naming" in message and "colour" in message


def test_microsoft365_enabled_loads(tmp_path: Path) -> None:
    text = (
        "targets:\n  microsoft365:\n    enabled: true\n    tenant_domain: School.Example\n"
        "    kind: group\n    group_kinds: [year]\n    owners: {admins: [it.admin]}\n"
    )
    m365 = load_establishment(write(tmp_path, minimal(text))).targets.microsoft365
    assert m365.tenant_domain == "school.example" and m365.kind == "group" and m365.group_kinds == ("year",)
    assert m365.drift_check.every_days == 7 and m365.drift_check.policy == "revert"


def test_link_mode_with_thresholds_loads(tmp_path: Path) -> None:
    path = write(tmp_path, minimal("mode: link\nlink:\n  thresholds: {likely: 0.95, possible: 0.6}\n"))
    config = load_establishment(path)
    assert config.mode == "link"
    assert config.link.thresholds.likely == 0.95
    assert config.link.auto_link_likely is False


def test_link_thresholds_must_be_ordered(tmp_path: Path) -> None:
    message = load_error(
        write(tmp_path, minimal("mode: link\nlink:\n  thresholds: {likely: 0.5, possible: 0.8}\n"))
    )
    assert "link.thresholds" in message and "possible must not be above likely" in message


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, minimal("mode: mirror\n")))
    assert "mode: Input should be 'create' or 'link'" in message


def test_username_pattern_with_unknown_field(tmp_path: Path) -> None:
    body = minimal('usernames:\n  pupil:\n    pattern: "{first_initial}{surname}"\n')
    message = load_error(write(tmp_path, body))
    assert "usernames.pupil.pattern: " in message
    assert "unknown pattern fields: surname" in message


def test_username_pattern_needs_a_name(tmp_path: Path) -> None:
    body = minimal('usernames:\n  staff:\n    pattern: "{first_initial}"\n')
    message = load_error(write(tmp_path, body))
    assert "usernames.staff.pattern: " in message
    assert "pattern must use {last_name} or {first_name}" in message


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    body = minimal("colour: red\n").replace('"3804123"', '"12"')
    message = load_error(write(tmp_path, body))
    assert "laestab: " in message
    assert "colour: " in message


def test_unreadable_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    message = load_error(path)
    assert "cannot be read" in message


def test_discover_one_good_one_broken(tmp_path: Path) -> None:
    write(tmp_path, minimal(stem="good-school"), stem="good-school")
    broken = write(tmp_path, minimal("mode: mirror\n", stem="broken-school"), stem="broken-school")
    (tmp_path / "notes.txt").write_text("not a config")

    results = discover(tmp_path)

    assert [r.path.name for r in results] == ["broken-school.yaml", "good-school.yaml"]
    good = [r for r in results if r.establishment is not None]
    bad = [r for r in results if r.error is not None]
    assert len(good) == 1
    assert len(bad) == 1
    assert good[0].establishment.id == "good-school"
    assert good[0].error is None
    assert bad[0].path == broken
    assert bad[0].establishment is None
    assert str(bad[0].error).startswith(f"{broken}: ")


def test_discover_reads_yml_too(tmp_path: Path) -> None:
    write(tmp_path, minimal(stem="a-school"), stem="a-school", suffix=".yml")
    write(tmp_path, minimal(stem="b-school"), stem="b-school")
    results = discover(tmp_path)
    assert [r.establishment.id for r in results if r.establishment] == ["a-school", "b-school"]


def test_a_latin1_file_is_an_error_of_that_file_naming_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "ecole.yaml"
    path.write_bytes(minimal(stem="ecole").replace("Test School", "\u00c9cole Test").encode("latin-1"))
    message = load_error(path)
    assert "not UTF-8" in message and "line 2" in message and "0xc9" in message


def test_discover_isolates_a_latin1_file(tmp_path: Path) -> None:
    write(tmp_path, minimal(stem="good-school"), stem="good-school")
    bad = tmp_path / "ecole.yaml"
    bad.write_bytes(minimal(stem="ecole").replace("Test School", "\u00c9cole").encode("latin-1"))
    results = {r.path.name: r for r in discover(tmp_path)}
    assert results["good-school.yaml"].establishment is not None
    assert results["ecole.yaml"].establishment is None
    assert str(results["ecole.yaml"].error).startswith(f"{bad}: not UTF-8")


def test_yaml_and_yml_side_by_side_is_one_error_naming_both(tmp_path: Path) -> None:
    from mis_sync.config import establishment_file

    first = write(tmp_path, minimal(stem="twin-school"), stem="twin-school")
    second = write(tmp_path, minimal("mode: link\n", stem="twin-school"), stem="twin-school", suffix=".yml")
    write(tmp_path, minimal(stem="other-school"), stem="other-school")
    results = discover(tmp_path)
    assert [r.establishment.id for r in results if r.establishment] == ["other-school"]
    [twin] = [r for r in results if r.error]
    assert str(first) in str(twin.error) and str(second) in str(twin.error)
    with pytest.raises(ConfigError, match=r"twin-school\.yml"):
        establishment_file(tmp_path, "twin-school")
    assert establishment_file(tmp_path, "other-school") == tmp_path / "other-school.yaml"
    assert establishment_file(tmp_path, "absent") is None


def test_discover_empty_folder(tmp_path: Path) -> None:
    assert discover(tmp_path) == []


@pytest.mark.parametrize(
    ("establishment_id", "dag_id"),
    [
        ("demo-academy", "mis_sync__demo_academy"),
        ("st-mary-s-c-of-e-primary", "mis_sync__st_mary_s_c_of_e_primary"),
        ("school1", "mis_sync__school1"),
    ],
)
def test_dag_id_replaces_hyphens(establishment_id: str, dag_id: str) -> None:
    config = Establishment.model_validate(
        {
            "id": establishment_id,
            "name": "X",
            "laestab": "3804123",
            "mis": {"type": "file_drop", "connection_id": "c"},
        }
    )
    assert config.dag_id == dag_id


def test_unquoted_laestab_says_to_quote_it(tmp_path: Path) -> None:
    from mis_sync.config import ConfigError, load_establishment

    path = tmp_path / "unquoted.yaml"
    path.write_text("id: unquoted\nname: U\nlaestab: 8814001\nmis: {type: file_drop, connection_id: x}\n")
    with pytest.raises(ConfigError, match=r'laestab: .*quotes.*"8814001"'):
        load_establishment(path)


def test_report_says_why_a_source_has_no_teaching_groups() -> None:
    from mis_sync.pipeline import source_limits

    direct = source_limits("scholarpack", "scholarpack")
    assert len(direct) == 1 and "no teaching groups" in direct[0] and "none are synced" in direct[0]
    via = source_limits("scholarpack", "wonde")
    assert len(via) == 1 and "ScholarPack keeps no teaching groups" in via[0]
    assert source_limits("arbor", "arbor") == [] and source_limits("file_drop", "file_drop") == []
