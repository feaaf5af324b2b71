"""Drawing a form from a blueprint: which items one attempt gets, reproducible from its seed.

Pure: no Django import. Given the same pools, items to avoid and seed, the draw is the same.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence


def draw_form(
    *, pools: Sequence[tuple[int, Collection[int]]], avoid: Collection[int], seed: int
) -> list[int]:
    """Item ids for one form, in the order the student sees them.

    ``pools`` holds one ``(draw_count, item ids)`` per blueprint rule, in blueprint order. Each rule
    draws ``draw_count`` items it has not drawn for an earlier rule, first from the items not in
    ``avoid`` (the previous attempt's form), and only when those run out from the avoided ones; a pool
    smaller than its count gives what it has. The whole form is then shuffled. Pools are sorted before
    sampling so that the result depends only on their contents and the seed.
    """
    rng = random.Random(seed)
    avoided = set(avoid)
    chosen: list[int] = []
    taken: set[int] = set()
    for draw_count, pool in pools:
        candidates = sorted(set(pool) - taken)
        fresh = [item_id for item_id in candidates if item_id not in avoided]
        reused = [item_id for item_id in candidates if item_id in avoided]
        picks = rng.sample(fresh, min(draw_count, len(fresh)))
        shortfall = draw_count - len(picks)
        if shortfall > 0 and reused:
            picks += rng.sample(reused, min(shortfall, len(reused)))
        chosen.extend(picks)
        taken.update(picks)
    rng.shuffle(chosen)
    return chosen
