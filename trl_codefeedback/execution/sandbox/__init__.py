"""Stdlib-only code that runs in the sandbox worker processes (never imports torch or the package).

The worker is started as a script (``python -I sandbox/worker_main.py``); its modules import one
another by plain name there and relatively when imported as part of the package (tests, docs).
"""
