import pytest


@pytest.fixture
def refund_setup(order_setup):
    """The order setup, with the ERP's goodwill item (the demo ERP's GOODWILL) in both ERP sandboxes."""
    for erp in (order_setup.erp, order_setup.prima):
        erp.add_item("GOODWILL", "Goodwill credit")
    return order_setup
