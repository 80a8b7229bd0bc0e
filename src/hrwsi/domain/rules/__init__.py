"""Declarative triggering rules, evaluated by pure code on plain values.

* :mod:`.spec` — the rule kinds (``single``, ``serial_per_tile``, ``pair_slices``,
  ``fan_out_filtered``, ``join_same_tile_day``, ``composite_with_gate``);
* :mod:`.model` — the facts a rule reads (items, history, per-kind contexts) and what it
  returns (task proposals with deterministic keys, waits, skips);
* :mod:`.engine` — ``evaluate`` (one rule, one transaction) and ``explain``;
* :mod:`.keys` — the rule-instance key.
"""
