"""Printed figures ("~2.36M", "3.5 million", "402K", "3,502,849", "67.4%", "~14 MB") to a value and the
tolerance its rounding implies.

A figure printed with ``d`` decimals in a unit ``u`` stands for any value within half a unit of its last
digit: "3.5M" is 3,450,000 to 3,550,000; "402K" is 401,500 to 402,500; "3,502,849" is exact. A leading "~",
"about" or "approximately" widens nothing: the rounding already says how approximate it is. A trailing "+"
("15+") means at least that value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from ..errors import ArchauditError

SCALES = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "thousand": 10**3,
    "M": 10**6,
    "million": 10**6,
    "B": 10**9,
    "billion": 10**9,
    "G": 10**9,
    "T": 10**12,
    "trillion": 10**12,
}
UNITS = {"%": "percent", "MB": "megabytes", "GB": "gigabytes", "KB": "kilobytes", "x": "ratio", "×": "ratio"}

# Every run of white space in the pattern is a single optional space: the text is matched after its white space
# is folded to single spaces, so no two quantifiers compete for the same characters and matching is linear.
_FIGURE = re.compile(
    r"^(?P<approx>~|≈|about |approximately |over |> ?|< ?|less than )?"
    r"(?:~?(?P<low>\d+(?:\.\d+)?) ?[-–] ?)?"
    r"(?P<number>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)"
    r"(?: ?(?P<scale>thousand|million|billion|trillion|[kKMBGT](?![a-zA-Z])))?"
    r"(?: ?(?P<work_scale>[KMGT])?(?P<work>FLOPs|FLOPS|flops|MACs|MACS|macs|MAdds|Mult-Adds|mult-adds)(?![a-zA-Z]))?"
    r"(?: ?(?P<unit>%|MB|GB|KB|x|×))?(?: ?(?P<plus>\+))?"
    r"(?: (?P<noun>[A-Za-z][A-Za-z-]{0,23}(?: [A-Za-z][A-Za-z-]{0,23})?))?$"
)
"""A figure may end in what it counts: ``FLOPs``/``MACs`` with their own scale glued on (``0.73 GFLOPs``), or a
word or two (``12 layers``, ``8 heads``, ``2.3M parameters``); neither changes its value."""
MAX_FIGURE_CHARS = 64
"""The longest printed figure read ("approximately 3,502,849,000 MB+" is 31): a longer one is refused unread."""


class FigureError(ArchauditError, ValueError):
    """A printed figure could not be read (the text is named)."""


@dataclass(frozen=True)
class Figure:
    text: str
    value: float
    tolerance: float
    """Half a unit of the last printed digit, in the figure's own scale (0 for an exact integer)."""
    unit: str = ""
    at_least: bool = False
    at_most: bool = False
    range_low: float | None = None
    """For a range ("12-15M"), its printed lower end; ``value`` is then the upper end."""
    range_tolerance: float = 0.0
    """Half a unit of the lower end's own last digit ("1.5-2M": 0.05M, not 2's 0.5M)."""

    @property
    def low(self) -> float:
        if self.at_most:
            return float("-inf")
        if self.range_low is not None:
            return self.range_low - self.range_tolerance
        return self.value if self.at_least else self.value - self.tolerance

    @property
    def high(self) -> float:
        if self.at_most:
            return self.value
        return float("inf") if self.at_least else self.value + self.tolerance

    def admits(self, actual: float) -> bool:
        return self.low - 1e-9 <= actual <= self.high + 1e-9


def parse_figure(text: str) -> Figure:
    if not isinstance(text, str):
        raise FigureError(f"a printed figure must be a string, not {type(text).__name__} {text!r:.40}")
    if len(text) > MAX_FIGURE_CHARS:
        raise FigureError(
            f"the figure {text[:20]!r}... is {len(text):,} characters long; a printed figure has at "
            f"most {MAX_FIGURE_CHARS}"
        )
    match = _FIGURE.match(" ".join(text.split()))
    if not match:
        raise FigureError(f"cannot read the figure {text!r} (expected e.g. 3,502,849, ~2.36M, 402K, 67.4%, 14 MB)")
    number = match["number"]
    if match["scale"] and match["work_scale"]:
        raise FigureError(f"cannot read the figure {text!r}: two scales ({match['scale']} and {match['work_scale']})")
    scale = SCALES[match["scale"] or match["work_scale"] or ""]
    digits = Decimal(number.replace(",", ""))
    exponent = digits.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    exact_integer = decimals == 0 and scale == 1 and "," in number
    if exact_integer:
        tolerance = 0.0
    else:
        tolerance = 0.5 * 10 ** (-decimals) * scale
        if decimals == 0 and scale == 1 and match["unit"] is None:  # "12", "12 layers", "12 FLOPs"
            tolerance = 0.0 if not match["approx"] else 0.5  # a bare integer is exact unless marked approximate
    unit = UNITS.get(match["unit"] or "", "")
    marker = (match["approx"] or "").strip()
    at_least = bool(match["plus"]) or marker in (">", "over")
    at_most = marker in ("<", "less than")
    range_low = range_tolerance = None
    if match["low"]:
        low_digits = Decimal(match["low"])
        low_exponent = low_digits.as_tuple().exponent
        low_decimals = -low_exponent if isinstance(low_exponent, int) and low_exponent < 0 else 0
        range_low = float(low_digits) * scale
        range_tolerance = 0.5 * 10 ** (-low_decimals) * scale
    return Figure(
        text=text,
        value=float(digits) * scale,
        tolerance=tolerance,
        unit=unit,
        at_least=at_least,
        at_most=at_most,
        range_low=range_low,
        range_tolerance=range_tolerance or 0.0,
    )
