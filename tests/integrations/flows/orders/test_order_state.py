"""The order's state machine: one table of allowed moves; nothing goes backwards."""
import pytest

from integrations.flows.orders import TRANSITIONS, can_transition
from integrations.models import OrderLink

S = OrderLink.State


@pytest.mark.parametrize("current, new", [
    (S.CANCELLED, S.WAITING_PAYMENT), (S.CANCELLED, S.POSTING), (S.POSTED, S.WAITING_PAYMENT),
    (S.POSTED, S.POSTING), (S.POSTED, S.FAILED), (S.FAILED, S.WAITING_PAYMENT), (S.TEST, S.POSTING),
    (S.DISPATCHED, S.PARTLY_DISPATCHED), (S.DISPATCHED, S.POSTED), (S.PARTLY_DISPATCHED, S.POSTED),
    (S.REFUNDED, S.DISPATCHED), (S.REFUNDED, S.POSTED), (S.DISPATCHED, S.CANCELLED), (S.RECEIVED, S.DISPATCHED),
])
def test_a_backwards_move_is_refused(current, new):
    assert not can_transition(current, new)


@pytest.mark.parametrize("current, new", [
    (S.RECEIVED, S.WAITING_PAYMENT), (S.WAITING_PAYMENT, S.POSTING), (S.POSTING, S.POSTED),
    (S.POSTED, S.CANCELLED), (S.FAILED, S.POSTING), (S.RECEIVED, S.TEST),
    (S.POSTED, S.PARTLY_DISPATCHED), (S.PARTLY_DISPATCHED, S.DISPATCHED), (S.POSTED, S.DISPATCHED),
    (S.DISPATCHED, S.REFUNDED), (S.POSTED, S.REFUNDED),
])
def test_the_forward_moves_are_allowed(current, new):
    assert can_transition(current, new)


def test_every_state_has_a_row_and_cancelled_is_final():
    assert set(TRANSITIONS) == set(S.values)
    assert TRANSITIONS[S.CANCELLED] == set()


def test_every_state_after_posting_counts_as_in_the_erp():
    assert OrderLink.IN_ERP == {S.POSTED, S.PARTLY_DISPATCHED, S.DISPATCHED, S.REFUNDED}
    for state in OrderLink.IN_ERP:
        assert not can_transition(state, S.POSTING) and not can_transition(state, S.FAILED)
