"""LOS geometry of core/geometry.py pinned against MintPy's convention and core/conventions.py."""

import math
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose

from insar_gnss_3d.core import conventions
from insar_gnss_3d.core.geometry import (enu_to_los, heading_incidence, los_unit_vector,
                                         unit_vector_error)


def mintpy_enu2los_unit(heading_deg, incidence_deg):
    """MintPy's ``utils0.enu2los`` unit vector, written out (right-looking SAR).

    ``az = -(heading - 90)`` wrapped to [-180, 180] (``heading2azimuth_angle``), the
    ground-to-satellite LOS azimuth counter-clockwise from north; then
    ``e = -sin(inc) sin(az)``, ``n = sin(inc) cos(az)``, ``u = cos(inc)``; the LOS
    displacement is positive for motion towards the satellite.
    """
    az = (np.asarray(heading_deg, dtype=float) - 90.0) * -1.0
    az = az - np.round(az / 360.0) * 360.0
    inc = np.radians(incidence_deg)
    return (-np.sin(inc) * np.sin(np.radians(az)), np.sin(inc) * np.cos(np.radians(az)), np.cos(inc))


# Sentinel-1 at 39 deg incidence: ascending heading -12 deg (348), descending -168 deg (192).
SIN39, COS39 = math.sin(math.radians(39.0)), math.cos(math.radians(39.0))       # 0.629320, 0.777146
ASCENDING = (-SIN39 * math.cos(math.radians(-12.0)), SIN39 * math.sin(math.radians(-12.0)), COS39)
DESCENDING = (-SIN39 * math.cos(math.radians(-168.0)), SIN39 * math.sin(math.radians(-168.0)), COS39)


@pytest.mark.parametrize("heading_deg, expected", [
    (-12.0, (-0.615568, -0.130843, 0.777146)),
    (348.0, (-0.615568, -0.130843, 0.777146)),
    (-168.0, (0.615568, -0.130843, 0.777146)),
    (192.0, (0.615568, -0.130843, 0.777146)),
])
def test_sentinel1_los_unit_vector_has_the_published_numbers(heading_deg, expected):
    got = los_unit_vector(heading_deg, 39.0)
    assert_allclose(got, expected, atol=5e-7)
    assert_allclose(got, mintpy_enu2los_unit(heading_deg, 39.0), atol=1e-12)


def test_los_unit_vector_matches_mintpy_on_a_grid_of_geometries():
    heading, incidence = np.meshgrid(np.arange(-180.0, 181.0, 7.5), np.arange(20.0, 47.0, 1.5))
    ours = np.stack(los_unit_vector(heading, incidence))
    theirs = np.stack(mintpy_enu2los_unit(heading, incidence))
    assert ours.shape == (3,) + heading.shape
    assert_allclose(ours, theirs, atol=1e-12)
    assert unit_vector_error(*ours) < 1e-12


def test_motion_towards_the_satellite_is_positive():
    # ascending: the satellite flies north-north-west and looks east, so it sits west of and above
    # the ground; westward or upward motion shortens the range
    e, n, u = ASCENDING
    assert e < 0 and n < 0 and u > 0
    assert enu_to_los(-0.01, 0.0, 0.0, e, n, u) == pytest.approx(0.01 * SIN39 * math.cos(math.radians(12.0)))
    assert enu_to_los(0.0, 0.0, 0.01, e, n, u) == pytest.approx(0.01 * COS39)
    assert enu_to_los(0.0, 0.0, -0.01, e, n, u) < 0
    # moving 1 cm along the unit vector (towards the satellite) is +1 cm of LOS, on both tracks
    for v in (ASCENDING, DESCENDING):
        assert enu_to_los(*(0.01 * c for c in v), *v) == pytest.approx(0.01)
    # descending looks west: the satellite is east of the ground, eastward motion is positive
    assert enu_to_los(0.01, 0.0, 0.0, *DESCENDING) == pytest.approx(0.01 * 0.615568, abs=1e-8)


def test_unwrapped_phase_sign_follows_range():
    # phase grows with range: a positive phase is motion away from the satellite
    one_cm_phase = 4.0 * math.pi * 0.01 / conventions.WAVELENGTH_M           # 2.2658 rad
    assert conventions.phase_to_los_m(one_cm_phase) == pytest.approx(-0.01)
    assert one_cm_phase == pytest.approx(2.26584, abs=1e-5)


def test_heading_incidence_round_trip():
    heading = np.array([-179.0, -168.0, -90.0, -12.0, 0.0, 12.0, 90.0, 168.0, 180.0, 348.0, 192.0])
    incidence = np.linspace(20.0, 46.0, heading.size)
    back_heading, back_incidence = heading_incidence(*los_unit_vector(heading, incidence))
    wrapped = (heading + 180.0) % 360.0 - 180.0
    wrapped[wrapped == -180.0] = 180.0                               # (-180, 180]
    assert_allclose(back_heading, wrapped, atol=1e-9)
    assert_allclose(back_incidence, incidence, atol=1e-9)
    assert np.all((back_heading > -180.0) & (back_heading <= 180.0))


def test_the_example_in_conventions_holds():
    match = re.search(r"Ascending \(heading (-?[\d.]+), incidence ([\d.]+)\): \((-?[\d.]+), (-?[\d.]+), (-?[\d.]+)\)",
                      conventions.__doc__)
    assert match, "the ascending example is gone from core/conventions.py"
    heading, incidence, *vector = (float(x) for x in match.groups())
    assert (heading, incidence) == (-12.0, 39.0)
    assert_allclose(los_unit_vector(heading, incidence), vector, atol=5e-4)
    # and the closed forms written there: e = -sin(inc) cos(heading), n = sin(inc) sin(heading)
    assert_allclose(los_unit_vector(heading, incidence), ASCENDING, atol=1e-15)
