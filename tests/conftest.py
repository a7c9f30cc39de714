"""Hypothesis profiles, registered once for the whole test suite.

* ``dev``: fast local runs (30 examples per property).
* ``ci``: derandomised, 40 examples per property, no deadline, too_slow suppressed
  (module construction speed on a loaded runner is not what these tests measure; the suite's total run time is).
  Derandomised means the same examples every run, so a larger count buys nothing run after run; it is set so
  that the whole suite stays under 2 minutes on 2 cores (it was 60 until the property tests took a third of the
  suite's time, about 80 of 250 CPU-seconds; the ``deep`` profile is where a thorough search belongs).
* ``deep``: the ``ci`` profile with 1,000 examples per property and a fresh random seed each run, for a
  thorough search before a release or after touching a formula (``HYPOTHESIS_PROFILE=deep``). Tests that cap
  their own count (the slow whole-layer ones) keep their cap.

The profile loaded is ``$HYPOTHESIS_PROFILE`` when set, else ``ci`` when ``$CI`` is set (``CI=true``, as
GitHub Actions and most runners export), else ``dev``. ``pytest --hypothesis-profile=NAME`` still wins, since
Hypothesis's pytest plugin applies it after this file is imported.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Both start from Hypothesis's own defaults, not from whatever profile Hypothesis auto-loaded on detecting $CI.
_BASE = settings.get_profile("default")

settings.register_profile(
    "dev",
    parent=_BASE,
    max_examples=30,
    deadline=None,
)
settings.register_profile(
    "ci",
    parent=_BASE,
    derandomize=True,
    database=None,
    max_examples=40,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    parent=settings.get_profile("ci"),
    derandomize=False,
    max_examples=1000,
)


def _default_profile() -> str:
    ci = os.environ.get("CI", "").strip().lower()
    return "ci" if ci and ci not in {"0", "false", "no"} else "dev"


settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or _default_profile())
