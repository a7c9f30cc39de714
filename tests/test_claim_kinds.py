"""The claim kinds, declared in three places that must agree: :data:`archaudit.claims.records.KINDS` (the kinds),
:data:`archaudit.claims.loader.CLAIM_KEYS` (each kind's keys) and :data:`archaudit.claims.check.CHECKERS` (each
kind's checker). Oracle: ``KINDS``, the one list the other two are compared with; and the registration refusals,
checked by registering into a copy of the table.
"""

from __future__ import annotations

import pytest

from archaudit.claims import check
from archaudit.claims.check import CHECKERS, _check, _checks
from archaudit.claims.loader import CLAIM_KEYS
from archaudit.claims.records import KINDS, Claim


def test_kinds_are_listed_once():
    assert len(set(KINDS)) == len(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_one_checker_and_its_keys(kind):
    assert kind in CHECKERS, f"claim kind {kind!r} has no checker in archaudit.claims.check.CHECKERS"
    assert kind in CLAIM_KEYS, f"claim kind {kind!r} declares no keys in archaudit.claims.loader.CLAIM_KEYS"


def test_no_checker_or_keys_for_an_unknown_kind():
    assert set(CHECKERS) - set(KINDS) == set()
    assert set(CLAIM_KEYS) - set(KINDS) == set()
    assert len(CHECKERS) == len(CLAIM_KEYS) == len(KINDS)  # with the two above: the same set, each once


def test_registering_an_unknown_kind_or_a_second_checker_is_refused(monkeypatch):
    monkeypatch.setattr(check, "CHECKERS", dict(CHECKERS))  # the decorator registers into this copy

    def second(ctx, claim):  # pragma: no cover - never called
        raise AssertionError

    with pytest.raises(ValueError, match="claim kind 'energy', which is not one of total, trainable"):
        _checks("energy")(second)
    with pytest.raises(ValueError, match=r"claim kind 'total' has a checker already \(_check_total\)"):
        _checks("total")(second)
    assert check.CHECKERS == CHECKERS  # neither refusal registered anything


def test_a_claim_of_an_unknown_kind_is_not_checked():
    claim = Claim(id="x", kind="energy", where="here", printed="1", figure=None, line=1)
    with pytest.raises(ValueError, match="unhandled claim kind 'energy'"):
        _check(None, claim)  # the lookup fails before the context is read


def test_every_kind_that_takes_implied_applies_it():
    """``implied`` is applied to the checker's result by _check, except where the checker applies it itself
    (reported, only when nothing is published); sum and derived are checked against the document already and
    take no ``implied``."""
    takes_implied = {kind for kind, spec in CLAIM_KEYS.items() if "implied" in spec.allowed}
    not_applied_by_check = {kind for kind, checker in CHECKERS.items() if not checker.self_check}
    assert not_applied_by_check == {"sum", "derived", "reported", "cross"}
    assert takes_implied & not_applied_by_check == {"reported"}
