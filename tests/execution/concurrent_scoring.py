"""Several executors scoring their batches at the same moment (the oversubscription tests' load)."""

from __future__ import annotations

import threading


def score_at_once(executors: list, batches: list[list]) -> list[list]:
    """``executors[k].run(batches[k])`` for every k, all released at once by a barrier; the results in order.

    Start the pools first (one small run each): otherwise start-up staggers the batches.
    """
    results: list = [None] * len(batches)
    barrier = threading.Barrier(len(batches))

    def score(k: int) -> None:
        barrier.wait()
        results[k] = executors[k].run(batches[k])

    threads = [threading.Thread(target=score, args=(k,)) for k in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
