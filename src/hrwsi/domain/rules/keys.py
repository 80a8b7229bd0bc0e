"""Deterministic rule-instance keys: the same rule, tile, day and input set give the same
key in every process, so ``hrwsi.rule_instance``'s primary key stops a second task."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date

from hrwsi.domain.rules.model import InputId

# Past this many ids the key carries a digest instead (a composite may have dozens).
MAX_LISTED_IDS = 16


def instance_key(rule: str, tile: str, day: date, inputs: Iterable[InputId]) -> str:
    """``rule:tile:YYYYMMDD:id+id+…`` with the ids sorted (or ``#<sha256>`` of them)."""
    ids = sorted(set(inputs))
    if not ids:
        raise ValueError("a rule instance needs at least one input")
    listed = "+".join(str(i) for i in ids)
    if len(ids) > MAX_LISTED_IDS:
        listed = f"{len(ids)}#" + hashlib.sha256(listed.encode()).hexdigest()[:32]
    return f"{rule}:{tile}:{day:%Y%m%d}:{listed}"
