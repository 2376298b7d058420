"""The cyclic garbage collector of a server process, set once its start-up is done.

CPython collects its youngest generation whenever 700 more container objects (dicts, lists,
instances) have been allocated than freed. One evaluation builds a few thousand, the facts,
the trace, the determination and its JSON, and frees them by reference counting when it is
done. At the default threshold nearly every request therefore pays a pass over objects that
are about to be freed anyway, and the survivors of those passes bring on, every second or so, a
full pass over the 185,000 objects the loaded application holds (modules, schemas, compiled
rule sets), which stops the event loop for tens of milliseconds. Measured under load, the
collector took 14% of the process's time (docs/performance.md).

Two settings remove that work and keep collection:

- ``gc.freeze()`` once start-up is done moves what the application loaded into a permanent
  generation that passes skip: those objects live as long as the process. A cycle among them
  that becomes garbage later is not collected; start-up objects are not let go in cycles.
- a young threshold well above what one request allocates at its peak (a few thousand
  containers; a load at 5,000 still triggered one pass in 4 s, at 10,000 none), so that a pass
  runs when garbage has accumulated, not in the middle of an evaluation. Cycles (an exception
  and its traceback, say) are still collected, a little later; the older generations keep
  their thresholds.

Only ``carelevel serve`` applies it (``create_app(server_process=True)``): a test process
building an application per test keeps the interpreter's defaults.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def settle_after_startup() -> None:
    """Collect start-up's garbage, freeze what is left and raise the young threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
