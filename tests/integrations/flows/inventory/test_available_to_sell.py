"""ATS rules: states, buffers (units and percent), kits, never below zero; the diff of changed levels."""
from decimal import Decimal

from integrations.flows.inventory import (
    LocationRule,
    SkuPlan,
    api_calls_needed,
    available_to_sell,
    in_quiet_window,
    kit_available_to_sell,
    levels_compute,
    levels_diff,
    stock_figures,
)


def row(on_hand, allocated=0, reserved=0, **states):
    return stock_figures({"item_code": "X", "depot": "MAIN", "on_hand": on_hand, "allocated": allocated,
                          "reserved": reserved, "states": states})


def test_available_is_on_hand_minus_allocated_minus_reserved():
    assert available_to_sell(row(100, allocated=20, reserved=5), LocationRule("L1", "MAIN")) == 75


def test_non_sellable_states_are_subtracted_and_sellable_ones_kept():
    figures = row(100, in_transit=10, quality_inspection=5, damaged=3, returned_awaiting_inspection=2)
    assert available_to_sell(figures, LocationRule("L1", "MAIN")) == 80
    selling_in_transit = LocationRule("L1", "MAIN", frozenset({"available", "in_transit"}))
    assert available_to_sell(figures, selling_in_transit) == 90


def test_buffer_in_units_and_percent_rounds_towards_not_overselling():
    assert available_to_sell(row(50), LocationRule("L1", "MAIN", buffer_units=5)) == 45
    # 10% of 55 is 5.5: the buffer rounds up to 6, so 49 are offered, not 50.
    assert available_to_sell(row(55), LocationRule("L1", "MAIN", buffer_percent=Decimal("10"))) == 49
    assert available_to_sell(row(55), LocationRule("L1", "MAIN", buffer_units=2, buffer_percent=Decimal("10"))) == 47


def test_never_below_zero():
    assert available_to_sell(row(10, allocated=8, reserved=5), LocationRule("L1", "MAIN")) == 0
    assert available_to_sell(row(3), LocationRule("L1", "MAIN", buffer_units=5)) == 0
    assert available_to_sell(None, LocationRule("L1", "MAIN")) == 0


def test_kit_is_the_scarcest_component_divided_by_its_quantity():
    ats = {"MUG": 10, "TEE": 7}
    assert kit_available_to_sell([("MUG", 2), ("TEE", 1)], ats.__getitem__) == 5
    assert kit_available_to_sell([("MUG", 2), ("TEE", 3)], ats.__getitem__) == 2
    assert kit_available_to_sell([("MUG", 11)], ats.__getitem__) == 0


def test_levels_per_location_share_one_warehouse_with_their_own_rules():
    stock = {("MUG", "MAIN"): row(20), ("TEE", "MAIN"): row(9), ("MUG", "NORTH"): row(4)}
    rules = [LocationRule("web", "MAIN"), LocationRule("popup", "MAIN", buffer_units=3), LocationRule("north", "NORTH")]
    plans = [SkuPlan("MUG", "MUG"), SkuPlan("GIFTSET", "", (("MUG", 2), ("TEE", 1)))]
    levels = levels_compute(plans, rules, stock)
    assert levels == {
        ("MUG", "web"): 20, ("GIFTSET", "web"): 9,
        ("MUG", "popup"): 17, ("GIFTSET", "popup"): 6,
        ("MUG", "north"): 4, ("GIFTSET", "north"): 0,
    }


def test_only_levels_that_differ_from_the_last_push_are_changed():
    computed = {("A", "l"): 5, ("B", "l"): 7, ("C", "l"): 0}
    pushed = {("A", "l"): 5, ("B", "l"): 6}
    assert levels_diff(computed, pushed) == [("B", "l"), ("C", "l")]
    assert api_calls_needed(501, 250) == 3
    assert api_calls_needed(0, 250) == 0


def test_quiet_hours():
    from datetime import datetime

    assert in_quiet_window(datetime(2025, 5, 1, 12, 30), "11-14,18-21")
    assert not in_quiet_window(datetime(2025, 5, 1, 14, 0), "11-14,18-21")
    assert in_quiet_window(datetime(2025, 5, 1, 23, 0), "22-6")
    assert not in_quiet_window(datetime(2025, 5, 1, 12, 0), "")
