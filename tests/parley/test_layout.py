import pytest

from parley.layout import Layout, LayoutError, placement_tag
from parley.settings import Settings, SettingsError
from parley.shards import home_for, home_in


def test_regions_home_consecutive_shards_in_the_order_named() -> None:
    layout = Layout.parse("eu:4, us:2")
    assert layout.total == 6 and layout.names == ("eu", "us")
    assert layout.shards_in("eu") == range(0, 4) and layout.shards_in("us") == range(4, 6)
    assert [layout.region_of(s) for s in range(7)] == ["eu"] * 4 + ["us"] * 2 + [None]
    assert layout.control_region == "eu" and placement_tag("us") == "region:us"


def test_without_regions_every_shard_is_local_and_unplaced() -> None:
    layout = Layout.single(4)
    assert layout.shards_in("anything") == range(4) and layout.region_of(2) is None
    assert layout.control_region is None


@pytest.mark.parametrize("text", ["eu", "eu:0", "eu:x", "EU:2", "eu:2,eu:2", "", "eu:2,,us:2"])
def test_a_bad_layout_is_refused(text: str) -> None:
    with pytest.raises(LayoutError):
        Layout.parse(text)


def test_settings_take_the_total_and_insist_on_a_known_region() -> None:
    s = Settings(regions="eu:4,us:4", region="us", shards=4)
    assert s.shards == 8 and s.layout().shards_in(s.region) == range(4, 8)
    with pytest.raises(SettingsError, match="not one of eu, us"):
        Settings(regions="eu:4,us:4", region="asia")
    with pytest.raises(SettingsError, match="between 1 and 64"):
        Settings(regions="eu:40,us:40", region="eu")


def test_a_conversation_is_homed_in_its_creators_region_by_the_same_stable_hash() -> None:
    us = range(4, 8)
    homes = {home_in(f"dm.a{i}.b{i}", us) for i in range(200)}
    assert homes == set(us)
    assert all(home_in(c, range(4)) == home_for(c, 4) for c in (f"g{i}" for i in range(50)))
