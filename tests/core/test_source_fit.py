"""The elastic source fitted by the data-consistency step (core.source_fit).

A field made by a known Okada fault (the forward model is checked against Okada 1985 Table 2
in test_okada.py), seen by two noisy tracks (or one) and a few stations: the fit must find
the fault and predict the north the tracks hardly see."""

import numpy as np
import pytest

from insar_gnss_3d.core.okada import Fault, surface_displacement
from insar_gnss_3d.core.source_fit import (SOURCE_EXPLAINED_FLOOR, SOURCE_WEIGHT_MAX,
                                          Observations, fit_source, los_observations,
                                          source_weight, station_observations)

PIXEL_M = 1000.0
SIZE_PX = 64


def grid():
    centres = (np.arange(SIZE_PX) + 0.5) * PIXEL_M
    return np.meshgrid(centres, -centres)


def thrust():
    return Fault(east=20e3, north=-12e3, depth=3e3, strike=20.0, dip=18.0, length=40e3, width=22e3,
                 rake=95.0, slip=1.5)


def scene(fault, noise_m, seed=0):
    """The truth, two tracks' LOS with white noise and 8 stations with 3 mm noise."""
    x, y = grid()
    truth = np.stack(surface_displacement(fault, x, y))
    rng = np.random.default_rng(seed)
    # Sentinel-1-like ascending and descending unit vectors (ground -> satellite, conventions.py)
    units = [np.array([-0.616, -0.131, 0.777]), np.array([0.616, -0.131, 0.777])]
    tracks = [(np.tensordot(u, truth, 1) + rng.normal(0.0, noise_m, truth.shape[1:]), u, noise_m) for u in units]
    stations = rng.uniform(2e3, 62e3, (8, 2)) * np.array([1.0, -1.0])
    net = np.stack(surface_displacement(fault, stations[:, 0], stations[:, 1]), -1)
    return truth, tracks, stations, net + rng.normal(0.0, 0.003, net.shape)


def check_fit(fit, fault, truth):
    assert fit is not None
    assert fit.explained > 0.95
    assert fit.misfit < 1.5                    # residuals about the size of the noise
    assert abs(fit.fault.moment_magnitude - fault.moment_magnitude) < 0.1
    assert abs((fit.fault.strike - fault.strike + 180) % 360 - 180) < 5
    assert abs(fit.fault.dip - fault.dip) < 5
    assert abs(fit.fault.rake - fault.rake) < 5
    north_error = np.sqrt(np.mean((fit.field_m[1] - truth[1]) ** 2))
    # a few cm against a north field of ~0.5 m peak; north = 0 would miss it by its RMS
    assert north_error < 0.05 * np.abs(truth[1]).max()
    assert north_error < 0.2 * np.sqrt(np.mean(truth[1] ** 2))


def test_the_fit_to_two_tracks_finds_the_fault_and_predicts_the_north_they_hardly_see():
    fault = thrust()
    truth, tracks, stations, net = scene(fault, 0.01)
    obs = Observations.concatenate([los_observations(tracks, PIXEL_M), station_observations(stations, net)])
    check_fit(fit_source(obs, truth.shape[1:], PIXEL_M), fault, truth)


def test_too_little_data_gives_no_fit():
    los = np.full((8, 8), np.nan)
    los[0, :3] = 0.1
    track = (los, np.array([-0.616, -0.131, 0.777]), 0.01)
    assert fit_source(los_observations([track], PIXEL_M), (8, 8), PIXEL_M) is None


@pytest.mark.parametrize("explained, weight", [(0.5, 0.0), (SOURCE_EXPLAINED_FLOOR, 0.0),
                                               (0.8, 0.5 * SOURCE_WEIGHT_MAX), (1.0, SOURCE_WEIGHT_MAX),
                                               (float("nan"), 0.0)])
def test_a_source_carries_the_prior_in_proportion_to_what_it_explains(explained, weight):
    assert source_weight(explained) == pytest.approx(weight)

