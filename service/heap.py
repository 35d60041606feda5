"""The cyclic garbage collector, set for a run over many managers.

With CPython's defaults the collector's share of Kindly's CPU grew with the
organisation: every full collection walks every object alive, and what is alive
for the whole run (the imported modules, the settings, the roster of every
manager and report) grows with it. Measured on the bench (Google, dry run,
2,000 managers, ``bench/README.md``): the collector took 7.9 of 32.6 CPU
seconds, 13 % at 200 managers and 24 % at 2,000. Freezing what lives for the
run keeps collections from walking it again and again, and a larger young
generation collects the per-manager garbage (events, pages, answers) in fewer,
equally thorough passes: 0.4 s at 2,000, the same peak RSS.

Only the collector of reference cycles is concerned: objects are still freed
the moment nothing refers to them, frozen or not.
"""

from __future__ import annotations

import gc

#: allocations (net of frees) between collections of the young generation (default 700)
YOUNG = 50_000
#: young collections between collections of the middle one (default 10)
MIDDLE = 20
#: middle collections between full ones, which CPython also holds back until the
#: objects waiting for one are a quarter of those that survived the last (default 10)
FULL = 100

_settled = False


def settle() -> None:
    """Freeze what is alive now (call it once the roster is loaded) and collect less often.

    Once per process: a worker that reloads its roster does not freeze every
    week's, and a test that starts many workers freezes once.
    """
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, FULL)
