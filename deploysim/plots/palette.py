"""The colours every picture uses, so stable, candidate and a verdict look the same everywhere.

The hues are Okabe and Ito's palette for colour-blind readers (blue, orange, bluish green,
vermillion, reddish purple): stable and candidate differ in hue and lightness, a passing
and a failing measurement differ for readers with either red-green deficiency.

>>> VERSIONS["candidate"] == CANDIDATE, VERDICTS["Failed"] == FAIL
(True, True)
"""

from __future__ import annotations

STABLE = "#0072B2"  # blue
CANDIDATE = "#E69F00"  # orange
PREVIEW = "#CC79A7"  # reddish purple: test traffic to a blue-green preview
PASS = "#009E73"  # bluish green
FAIL = "#D55E00"  # vermillion
NO_VALUE = "#7F7F7F"  # a measurement without a value (the provider erred, no data)
INCONCLUSIVE = "#B59A00"  # dark yellow: neither passed nor failed
NOT_JUDGED = "#FFFFFF"  # hollow: a value the measurement's analysis did not judge
PAUSE = "#9E9E9E"  # a timed pause
GATE = "#56B4E9"  # sky blue: a manual gate, or a pause waiting for a person
FAULT = "#000000"  # faults are hatched in black
THRESHOLD = FAIL  # a check's bound: beyond it a measurement fails
INK = "#222222"  # text, the rollout's start

VERSIONS = {"stable": STABLE, "candidate": CANDIDATE, "preview": PREVIEW}
#: a measurement's colour by its phase, as the analysis names it
VERDICTS = {"Successful": PASS, "Failed": FAIL, "Error": NO_VALUE, "Inconclusive": INCONCLUSIVE,
            "NotJudged": NOT_JUDGED}
#: the decisions drawn as vertical lines: colour and line style
DECISIONS = {
    "start": (INK, "-"),
    "promote": (PASS, "--"),
    "abort": (FAIL, "--"),
    "complete": (NO_VALUE, ":"),
    "resumed": (INK, "-."),
}
