"""LOS unit vectors, ENU <-> LOS projection, regular grids, CRS helpers and ECEF -> ENU.

Every sign and angle follows :mod:`.conventions` (LOS unit vector from the ground to the
satellite, positive LOS = towards the satellite, heading clockwise from north).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np


def los_unit_vector(heading_deg, incidence_deg):
    """LOS unit vector (east, north, up) from heading and incidence, right-looking SAR.

    ``e = -sin(inc) cos(heading)``, ``n = sin(inc) sin(heading)``, ``u = cos(inc)``
    (:mod:`.conventions`; MintPy ``utils0.get_unit_vector4component_of_interest`` with the
    ground-to-satellite sign of LiCSAR). Works on scalars and numpy arrays.
    """
    heading = np.radians(heading_deg)
    incidence = np.radians(incidence_deg)
    return (-np.sin(incidence) * np.cos(heading),
            np.sin(incidence) * np.sin(heading),
            np.cos(incidence))


def heading_incidence(los_east, los_north, los_up):
    """Inverse of :func:`los_unit_vector`: (heading_deg in (-180, 180], incidence_deg)."""
    incidence = np.degrees(np.arccos(np.clip(los_up, -1.0, 1.0)))
    heading = np.degrees(np.arctan2(los_north, -los_east))
    return heading, incidence


def enu_to_los(east, north, up, los_east, los_north, los_up):
    """LOS displacement = ENU displacement . LOS unit vector (positive towards satellite)."""
    return east * los_east + north * los_north + up * los_up


def unit_vector_error(los_east, los_north, los_up):
    """Largest | |v| - 1 | over finite pixels, to reject LOS rasters that are not unit vectors."""
    norm = np.sqrt(los_east ** 2 + los_north ** 2 + los_up ** 2)
    norm = norm[np.isfinite(norm)]
    return float(np.max(np.abs(norm - 1.0))) if norm.size else float("nan")


@dataclass(frozen=True)
class Grid:
    """A north-up regular grid in a projected CRS.

    ``x0``/``y0`` are the west and north edges [CRS units, metres for a projected CRS];
    ``pixel_size`` the square pixel side; ``width``/``height`` pixels; ``crs_wkt`` the CRS
    as WKT (or any string pyproj/GDAL accept). Pixel (row, col) has its centre at
    ``(x0 + (col + 0.5) * pixel_size, y0 - (row + 0.5) * pixel_size)``.
    """

    x0: float
    y0: float
    pixel_size: float
    width: int
    height: int
    crs_wkt: str = ""

    def __post_init__(self):
        if not (self.pixel_size > 0 and math.isfinite(self.pixel_size)):
            raise ValueError(f"Pixel size must be a positive number, got {self.pixel_size}.")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"A grid needs at least one pixel, got {self.width} x {self.height}.")

    @classmethod
    def from_extent(cls, xmin, ymin, xmax, ymax, pixel_size, crs_wkt="", max_pixels=None):
        """Grid covering the extent; the pixel count is rounded up."""
        if not (xmax > xmin and ymax > ymin):
            raise ValueError(f"The extent is empty: x {xmin}..{xmax}, y {ymin}..{ymax}.")
        if not pixel_size > 0:
            raise ValueError(f"Pixel size must be > 0, got {pixel_size}.")
        width = int(math.ceil((xmax - xmin) / pixel_size - 1e-9))
        height = int(math.ceil((ymax - ymin) / pixel_size - 1e-9))
        if max_pixels is not None and width * height > max_pixels:
            raise ValueError(
                f"The grid would have {width} x {height} = {width * height:,} pixels, more than "
                f"the {max_pixels:,} allowed; use a larger pixel size or a smaller extent.")
        return cls(float(xmin), float(ymax), float(pixel_size), width, height, crs_wkt)

    @property
    def geotransform(self):
        """GDAL geotransform (x0, dx, 0, y0, 0, -dy)."""
        return (self.x0, self.pixel_size, 0.0, self.y0, 0.0, -self.pixel_size)

    @property
    def extent(self):
        """(xmin, ymin, xmax, ymax)."""
        return (self.x0, self.y0 - self.height * self.pixel_size,
                self.x0 + self.width * self.pixel_size, self.y0)

    def centres(self, dtype=np.float64):
        """(x, y) pixel-centre coordinate arrays of shape (height, width)."""
        x = self.x0 + (np.arange(self.width, dtype=dtype) + 0.5) * self.pixel_size
        y = self.y0 - (np.arange(self.height, dtype=dtype) + 0.5) * self.pixel_size
        return np.meshgrid(x, y)

    def window(self, row0, col0, height, width):
        """Sub-grid starting at pixel (row0, col0)."""
        return Grid(self.x0 + col0 * self.pixel_size, self.y0 - row0 * self.pixel_size,
                    self.pixel_size, width, height, self.crs_wkt)


def utm_epsg(lon_deg: float, lat_deg: float) -> int:
    """EPSG code of the WGS 84 / UTM zone containing (lon, lat) (32601-60 N, 32701-60 S)."""
    if not (-180.0 <= lon_deg <= 180.0 and -90.0 <= lat_deg <= 90.0):
        raise ValueError(f"({lon_deg}, {lat_deg}) is not a longitude/latitude in degrees.")
    zone = min(int((lon_deg + 180.0) // 6.0) + 1, 60)
    return (32600 if lat_deg >= 0 else 32700) + zone


def ecef_to_enu(xyz_m: np.ndarray, reference_xyz_m: Sequence[float]) -> np.ndarray:
    """Local east/north/up [m] of ECEF positions about a reference ECEF position.

    With (lat0, lon0) the geodetic latitude and longitude of the reference (pyproj,
    EPSG:4978 -> EPSG:4979, WGS 84) and d = xyz - reference::

        e = -sin(lon0) dX + cos(lon0) dY
        n = -sin(lat0) cos(lon0) dX - sin(lat0) sin(lon0) dY + cos(lat0) dZ
        u =  cos(lat0) cos(lon0) dX + cos(lat0) sin(lon0) dY + sin(lat0) dZ

    the geocentric -> topocentric conversion of IOGP Guidance Note 7-2 (EPSG method 9836),
    also PROJ's ``+proj=topocentric``.

    Parameters
    ----------
    xyz_m : array (..., 3)
        Earth-centred, earth-fixed X, Y, Z [m].
    reference_xyz_m : 3 floats
        ECEF origin of the local frame [m].

    Returns
    -------
    numpy.ndarray (..., 3)
        East, north, up [m].

    References
    ----------
    .. [1] IOGP (2019). Coordinate Conversions and Transformations including Formulas,
       Geomatics Guidance Note 7, part 2 (IOGP Publication 373-7-2), "Geocentric/topocentric
       conversions" (EPSG dataset coordinate operation method code 9836).
    """
    from pyproj import Transformer
    ref = np.asarray(reference_xyz_m, dtype=np.float64)
    lon0, lat0, _ = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True).transform(
        ref[0], ref[1], ref[2])
    lam, phi = np.radians(lon0), np.radians(lat0)
    sl, cl, sp, cp = np.sin(lam), np.cos(lam), np.sin(phi), np.cos(phi)
    rotation = np.array([[-sl, cl, 0.0],
                         [-sp * cl, -sp * sl, cp],
                         [cp * cl, cp * sl, sp]])
    d = np.asarray(xyz_m, dtype=np.float64) - ref
    return d @ rotation.T


def ecef_to_lonlat(xyz_m: Sequence[float]) -> Tuple[float, float, float]:
    """Geodetic (lon [deg], lat [deg], ellipsoidal height [m]) of an ECEF position (WGS 84)."""
    from pyproj import Transformer
    lon, lat, h = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True).transform(
        float(xyz_m[0]), float(xyz_m[1]), float(xyz_m[2]))
    return float(lon), float(lat), float(h)
