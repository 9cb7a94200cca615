"""The reference pages of the docs restate code: each must equal what docs/gen_reference.py generates
from it now, so a renamed setting, a new check or a changed statement turns the suite red until
`make reference` is run and the page committed."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
gen_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_reference)


@pytest.mark.parametrize("page", sorted(gen_reference.PAGES))
def test_the_reference_page_is_what_the_code_generates(page):
    committed = (gen_reference.REFERENCE / page).read_text()
    assert committed == gen_reference.PAGES[page](), (
        f"docs/reference/{page} differs from the code: run `make reference` and commit the result"
    )


def test_a_changed_setting_changes_the_configuration_page(monkeypatch):
    """The drift test above can fail: the page follows the declaration (here a setting's doc line)."""
    from magsev_dagster.settings import Settings

    before = gen_reference.configuration()
    monkeypatch.setattr(Settings.model_fields["s3_bucket"], "description", "a different doc line")
    after = gen_reference.configuration()
    assert after != before and "a different doc line" in after


def test_a_new_check_changes_the_assets_page(monkeypatch):
    import dagster as dg

    from magsev_dagster import definitions

    @dg.asset_check(asset="polygon_hourly_prod", description="a check added after the page was generated")
    def an_added_check():
        return dg.AssetCheckResult(passed=True)

    before = gen_reference.assets()
    real = definitions.all_checks
    monkeypatch.setattr(definitions, "all_checks", lambda: [*real(), an_added_check])
    assert "an_added_check" in gen_reference.assets() and "an_added_check" not in before
