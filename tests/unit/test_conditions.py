from __future__ import annotations

import datetime as dt

from zentinel_operator.core.conditions import get_condition, is_true, set_condition
from zentinel_operator.models.common import ConditionStatus

T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def test_new_condition_gets_transition_time_now() -> None:
    conds = set_condition([], "Acknowledged", True, "ByHuman", "alice", now=T0, generation=2)
    assert len(conds) == 1
    c = conds[0]
    assert (c.type, c.status, c.reason, c.message) == ("Acknowledged", ConditionStatus.TRUE, "ByHuman", "alice")
    assert c.last_transition_time == T0 and c.observed_generation == 2


def test_transition_time_moves_only_when_status_flips() -> None:
    conds = set_condition([], "Healthy", False, "PodsNotReady", "1 of 3", now=T0)
    same = set_condition(conds, "Healthy", False, "PodsNotReady", "2 of 3", now=T1)
    assert same[0].last_transition_time == T0
    assert same[0].message == "2 of 3"
    flipped = set_condition(same, "Healthy", True, "PodsReady", "3 of 3", now=T1)
    assert flipped[0].last_transition_time == T1
    assert is_true(flipped, "Healthy")


def test_other_conditions_are_kept_in_order() -> None:
    conds = set_condition([], "A", True, "R", "", now=T0)
    conds = set_condition(conds, "B", False, "R", "", now=T0)
    conds = set_condition(conds, "A", False, "R2", "", now=T1)
    assert [c.type for c in conds] == ["A", "B"]
    a = get_condition(conds, "A")
    assert a is not None and a.reason == "R2"
    assert get_condition(conds, "C") is None
    assert not is_true(conds, "C")


def test_the_observed_generation_is_kept_when_none_is_given() -> None:
    conds = set_condition([], "A", True, "R", "", now=T0, generation=4)
    again = set_condition(conds, "A", True, "R", "still", now=T1)
    assert (again[0].observed_generation, again[0].last_transition_time) == (4, T0)
    assert set_condition(again, "A", True, "R", "", now=T1, generation=5)[0].observed_generation == 5
    assert set_condition([], "A", True, "R", "", now=T0)[0].observed_generation is None
