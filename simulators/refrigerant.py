"""R290 (propane), the freezer's natural refrigerant: saturation pressure versus temperature.

Antoine-form fit, ln p[bar] = A - B / (T[degC] + C), to propane's saturation table from
-40 to +50 degC (within 0.3 %).
"""

from __future__ import annotations

import math

_A, _B, _C = 9.492763, 2056.4834, 259.1


def saturation_pressure_bar(temp_c: float) -> float:
    """Absolute saturation pressure of R290 at `temp_c`."""
    return math.exp(_A - _B / (temp_c + _C))
