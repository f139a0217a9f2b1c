"""GNSS daily time series: the in-memory type, and readers for NGL .tenv3, GEONET F5 .pos, CSV.

Conventions in :mod:`.conventions`: east/north/up in metres (any constant offset), one
sample per day, NaN where a day is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np


@dataclass
class GnssSeries:
    """Daily E/N/U positions of a station network on a common, gap-free day axis.

    Attributes
    ----------
    stations : list of str
        Station names, length S.
    x, y : numpy.ndarray, shape (S,)
        Station coordinates in the CRS of the analysis [m] (or lon/lat [deg] when read
        from files, before projection).
    dates : numpy.ndarray of datetime64[D], shape (D,)
        Consecutive days.
    enu_m : numpy.ndarray, shape (S, D, 3)
        East, north, up [m]; NaN on days without a solution.
    """

    stations: List[str]
    x: np.ndarray
    y: np.ndarray
    dates: np.ndarray
    enu_m: np.ndarray

    def __post_init__(self):
        s, d = len(self.stations), len(self.dates)
        if self.enu_m.shape != (s, d, 3):
            raise ValueError(f"enu_m must have shape (stations, days, 3) = ({s}, {d}, 3), "
                             f"got {self.enu_m.shape}.")
        if self.x.shape != (s,) or self.y.shape != (s,):
            raise ValueError("x and y must hold one coordinate per station.")
