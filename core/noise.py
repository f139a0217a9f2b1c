"""Noise for synthetic InSAR and GNSS data: atmosphere, orbits, decorrelation, GNSS errors, DEMs.

Everything is torch, batched over any leading dimensions, and reproducible from a
``torch.Generator``: random numbers are drawn on the generator's device (the global RNG of
``device`` when ``generator is None``) and the result is moved to ``device`` (default: the
generator's device, else CPU) in ``dtype``. Amplitudes may be Python floats or tensors
that broadcast (numpy rules, aligned on the right) to the *leading* dimensions of
``shape``, i.e. ``shape[:-2]``, so one call draws, for example, every epoch of every track
of every scene with its own amplitude. Frames and signs follow :mod:`.conventions`; maps
are ``(..., H, W)`` with row 0 the northern edge and column 0 the western edge.

Units: metres for delays (as the equivalent LOS displacement, added to it as they are;
the noise is zero-mean, so its sign convention is immaterial, except for the sign of the
stratified coefficient, which is the caller's), metres for lengths, days for time.

Default working values (module constants) and where they come from
--------------------------------------------------------------------
``TURBULENCE_SIGMA_M`` = 5-15 mm per epoch, ``CORRELATION_LENGTH_M`` = 5-30 km
    Sentinel-1 turbulent delay, METHOD.md after Okada & Fukushima (2025); exponential
    covariance with e-folding lengths of this order: Lohman & Simons (2005) [3],
    Emardson et al. (2003) [4].
``STRATIFIED_M_PER_M`` = 0-20 mm/km
    magnitude of the epoch-to-epoch change of the elevation-delay coefficient,
    Fujiwara et al. (1999) [5], Ghayournajarkar & Fukushima (2022) [6] (METHOD.md).
``RAMP_M_PER_M`` = 0.5 mm/km
    long-wavelength (orbital) residual gradient, METHOD.md; quadratic terms after
    Fattahi & Amelung (2014) [7].
``GNSS_WHITE_H_M`` = 2.3 mm, ``GNSS_WHITE_V_M`` = 6.8 mm
    daily scatter of a GEONET station (METHOD.md); white noise is largest in the
    vertical (Mao et al. 1999 [8]).
``GNSS_RW_H_M_PER_SQRT_DAY``, ``GNSS_RW_V_M_PER_SQRT_DAY``
    1 and 2 mm/sqrt(yr) converted to per sqrt(day) (divide by sqrt(365.25)): the order of
    the monument random walk in Williams (2003) [9]; the white + random-walk model is the
    one the project cites (Williams 2003 [9]; Fukuda et al. 2008 [10]). Mao et al. (1999)
    [8] find flicker rather than random walk as the coloured part of global series;
    flicker noise is not modelled here.
``GNSS_COMMON_MODE_M`` = 0
    the common-mode error is removed with the Wdowinski et al. (1997) [11] stacking
    filter in practice (METHOD.md), so none is added unless asked for.

Design choices without a literature value (documented as such):
``DECORRELATION_PATCH_M`` (size of decorrelated patches), ``GNSS_MEAN_GAP_DAYS`` (mean
length of a data gap), ``PAD_FACTOR`` (FFT padding).

References
----------
.. [1] Hanssen, R. F. (2001). Radar Interferometry: Data Interpretation and Error Analysis,
   ch. 4 (atmospheric signal, power-law spectra). Kluwer. doi:10.1007/0-306-47633-9
.. [2] Huang, J., & Turcotte, D. L. (1989). Fractal mapping of digitized images: application
   to the topography of Arizona and comparisons with synthetic images. JGR 94(B6), 7491-7495.
.. [3] Lohman, R. B., & Simons, M. (2005). Some thoughts on the use of InSAR data to
   constrain models of surface deformation: noise structure and data downsampling.
   G-cubed 6, Q01007. doi:10.1029/2004GC000841
.. [4] Emardson, T. R., Simons, M., & Webb, F. H. (2003). Neutral atmospheric delay in
   interferometric synthetic aperture radar applications: statistical description and
   mitigation. JGR 108(B5), 2231. doi:10.1029/2002JB001781
.. [5] Fujiwara, S., et al. (1999): tropospheric delay proportional to elevation in
   interferograms of Japan. Cited by the project for the stratified delay; full reference
   not checked here.
.. [6] Ghayournajarkar, N., & Fukushima, Y. (2022): stratified tropospheric delay in InSAR
   time series, with epoch-to-epoch coefficients of 0-20 mm/km. Cited by the project;
   full reference not checked here.
.. [7] Fattahi, H., & Amelung, F. (2014). InSAR uncertainty due to orbital errors.
   Geophys. J. Int. 199(1), 549-560. doi:10.1093/gji/ggu276
.. [8] Mao, A., Harrison, C. G. A., & Dixon, T. H. (1999). Noise in GPS coordinate time
   series. JGR 104(B2), 2797-2816. doi:10.1029/1998JB900033
.. [9] Williams, S. D. P. (2003). The effect of coloured noise on the uncertainties of rates
   estimated from geodetic time series. J. Geodesy 76, 483-494. doi:10.1007/s00190-002-0283-4
.. [10] Fukuda, J., Miyazaki, S., Higuchi, T., & Kato, T. (2008). Geodetic inversion for
   space-time distribution of fault slip with time-varying smoothing regularization.
   Geophys. J. Int. 173, 25-48.
.. [11] Wdowinski, S., Bock, Y., Zhang, J., Fang, P., & Genrich, J. (1997). Southern
   California Permanent GPS Geodetic Array: spatial filtering of daily positions for
   estimating coseismic and postseismic displacements induced by the 1992 Landers
   earthquake. JGR 102(B8), 18057-18070. doi:10.1029/97JB01378
.. [12] Dietrich, C. R., & Newsam, G. N. (1997). Fast and exact simulation of stationary
   Gaussian processes through circulant embedding of the covariance matrix. SIAM J. Sci.
   Comput. 18(4), 1088-1107. doi:10.1137/S1064827592240555
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch

from .threads import LazyPool

Amplitude = Union[float, torch.Tensor]

# --------------------------------------------------------------------------------------
# Working values (see the module docstring for the sources)
# --------------------------------------------------------------------------------------

#: Standard deviation of the turbulent delay per epoch, (low, high) [m]: 5-15 mm for
#: Sentinel-1 C-band (METHOD.md; Emardson et al. 2003 [4]).
TURBULENCE_SIGMA_M = (0.005, 0.015)

#: Correlation (e-folding) length of the turbulent delay, (low, high) [m]: 5-30 km
#: (Lohman & Simons 2005 [3]; Emardson et al. 2003 [4]; METHOD.md).
CORRELATION_LENGTH_M = (5e3, 30e3)

#: 1-D spectral exponents of the turbulent delay (Hanssen 2001 [1], ch. 4): ``P(f) ~ f^-beta``
#: with beta = 5/3 at scales larger than the crossover (thin-layer, 2-D turbulence) and
#: 8/3 at smaller scales (3-D Kolmogorov turbulence). The 2-D spectra are one power steeper:
#: -8/3 and -11/3.
TURBULENCE_BETA_LARGE_SCALES = 5.0 / 3.0
TURBULENCE_BETA_SMALL_SCALES = 8.0 / 3.0

#: Kinds of turbulence spectrum :func:`turbulence` knows.
TURBULENCE_KINDS = ("powerlaw", "exponential")

#: Magnitude range of the per-epoch stratified-delay coefficient, (low, high)
#: [m of delay per m of elevation]: 0-20 mm/km (Fujiwara et al. 1999 [5];
#: Ghayournajarkar & Fukushima 2022 [6]; METHOD.md). The sign may be either.
STRATIFIED_M_PER_M = (0.0, 0.020 / 1000.0)

#: Gradient of the long-wavelength (orbital) ramp [m/m]: about 0.5 mm/km (METHOD.md;
#: Fattahi & Amelung 2014 [7] for orbital residuals).
RAMP_M_PER_M = 0.5e-3 / 1000.0

#: Daily white-noise standard deviation of GNSS positions [m]: 2.3 mm horizontal
#: (each of east and north), 6.8 mm vertical (a GEONET station, METHOD.md).
GNSS_WHITE_H_M = 2.3e-3
GNSS_WHITE_V_M = 6.8e-3

#: Days per year used to convert random-walk amplitudes from per sqrt(yr) to per sqrt(day).
DAYS_PER_YEAR = 365.25

#: GNSS random-walk amplitude [m / sqrt(day)]: 1 mm/sqrt(yr) horizontal, 2 mm/sqrt(yr)
#: vertical (order of the monument random walk in Williams 2003 [9]; Mao et al. 1999 [8]).
GNSS_RW_H_M_PER_SQRT_DAY = 1.0e-3 / math.sqrt(DAYS_PER_YEAR)
GNSS_RW_V_M_PER_SQRT_DAY = 2.0e-3 / math.sqrt(DAYS_PER_YEAR)

#: Common-mode (network-wide) daily error [m]: 0 by default because the Wdowinski et al.
#: (1997) [11] stacking filter removes it in practice (METHOD.md).
GNSS_COMMON_MODE_M = 0.0

#: Mean length of a GNSS data gap [days]. A design choice (no literature value): single
#: missing days and outages of a few days, as seen in GEONET F5 files.
GNSS_MEAN_GAP_DAYS = 3.0

#: Size (e-folding length of the thresholded field) of decorrelated patches [m]. A design
#: choice (no literature value): km-sized patches of land cover or steep slopes.
DECORRELATION_PATCH_M = 2e3

#: 1-D profile spectral exponent of topography (Huang & Turcotte 1989 [2]: beta ~ 2).
DEM_BETA = 2.0

#: Random fields are generated on a grid ``PAD_FACTOR`` times larger in each direction and
#: cropped, so that opposite edges of a map are not correlated through the periodic FFT.
PAD_FACTOR = 2.0

# Large CPU draws of white noise are split into this many independent streams (each a
# torch.Generator seeded from the caller's generator) filled by parallel threads: torch's
# CPU normal sampler is single-threaded and would otherwise dominate the run time. The
# number is fixed, so the result does not depend on the number of threads.
_CPU_STREAMS = 4
_CPU_STREAMS_MIN_NUMEL = 1 << 16

# Fraction of ``relief_m`` at which the lowest pixel of a DEM without sea lies, so that a
# caller marking ``dem <= 0`` as sea finds none.
_LAND_FLOOR_FRACTION = 0.01


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

def _check_shape(shape, name="shape", min_dims=2):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of ints, got {shape!r}.") from None
    if len(shape) < min_dims or any(s < 1 for s in shape):
        raise ValueError(f"{name} must have at least {min_dims} positive sizes, got {shape}.")
    return shape


def _check_pixel(pixel_m):
    pixel_m = float(pixel_m)
    if not (pixel_m > 0 and math.isfinite(pixel_m)):
        raise ValueError(f"pixel_m must be a positive number of metres, got {pixel_m}.")
    return pixel_m


def _devices(generator, device):
    """(device the random numbers are drawn on, device of the result)."""
    if generator is not None:
        draw = torch.device(generator.device)
        out = draw if device is None else torch.device(device)
    else:
        out = torch.device("cpu") if device is None else torch.device(device)
        draw = out
    return draw, out


def _param(value, name, lead, device, dtype, low=None, high=None, low_open=False):
    """``value`` as a tensor broadcastable to ``lead``, range-checked."""
    t = torch.as_tensor(value, dtype=dtype, device=device)
    try:
        ok = torch.broadcast_shapes(t.shape, lead) == torch.Size(lead)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} has shape {tuple(t.shape)}, which does not broadcast to the "
                         f"leading dimensions {tuple(lead)}; give a float or a tensor of a "
                         f"broadcastable shape.")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if low is not None and bool((t <= low).any() if low_open else (t < low).any()):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}.")
    if high is not None and bool((t > high).any()):
        raise ValueError(f"{name} must be <= {high}, got {value!r}.")
    return t


def _fft_size(n):
    """Smallest even integer >= n whose prime factors are 2, 3 and 5 (fast FFT length)."""
    m = max(2, int(n) + (int(n) % 2))
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 2


def _complex_dtype(dtype):
    if dtype == torch.float64:
        return torch.complex128
    if dtype == torch.float32:
        return torch.complex64
    raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")


def _randn_complex(size, generator, device, dtype):
    """Circular complex Gaussian white noise, E|Z|^2 = 1, drawn on ``device``."""
    cdtype = _complex_dtype(dtype)
    device = torch.device(device)
    if device.type != "cpu" or math.prod(size) < _CPU_STREAMS_MIN_NUMEL:
        return torch.randn(size, generator=generator, device=device, dtype=cdtype)
    seeds = torch.randint(0, 2 ** 62, (_CPU_STREAMS,), generator=generator, device=device).tolist()
    z = torch.empty(size, dtype=cdtype, device=device)
    chunks = torch.view_as_real(z).view(-1).chunk(_CPU_STREAMS)

    def fill(i):
        chunks[i].normal_(0.0, 0.5 ** 0.5, generator=torch.Generator().manual_seed(seeds[i]))

    def fill_every(first, step):
        for i in range(first, _CPU_STREAMS, step):
            fill(i)

    workers = min(_CPU_STREAMS, torch.get_num_threads())
    if workers > 1:
        list(_STREAM_POOL.get().map(fill_every, range(workers), [workers] * workers))
    else:
        fill_every(0, 1)
    return z


#: Threads that fill the noise streams (created once: a pool per call costs ~1 ms).
_STREAM_POOL = LazyPool(lambda: _CPU_STREAMS, "noise")


def _unit_field(shape, amplitude, generator, draw_device, device, dtype, pad_factor):
    """Zero-mean Gaussian random fields of unit expected variance with a given spectrum.

    ``amplitude(mh, mw)`` returns the square root of the 2-D power spectrum (up to a
    constant) on the half-plane ``ky >= 0`` of an ``mh x mw`` grid, shape
    ``(P, mh // 2 + 1, mw)`` for ``P`` distinct spectra (see :func:`_k2_grid`), and
    ``which``, the index of each field's spectrum (shape ``shape[:-2]``), or None for one
    spectrum shared by all fields: spectra are built and normalised once per distinct
    parameter, not once per field. ``mh, mw`` are ``pad_factor x`` the map size, rounded
    up to fast even FFT lengths. White circular complex Gaussian noise ``Z`` with ``E|Z|^2 = 1`` is
    drawn on that half-plane, made Hermitian along ``kx`` on the self-conjugate rows
    ``ky = 0`` and ``ky = Nyquist`` so that it has the law of the FFT of real white noise,
    filtered, inverse transformed (complex along x, then real along y) and cropped to
    ``(H, W)``. The filter is divided by ``sqrt(sum_k A(k)^2) / (mh mw)`` (sum over the
    full plane), which makes the *expected* variance of every pixel exactly 1.
    """
    lead, (h, w) = shape[:-2], shape[-2:]
    if not (pad_factor >= 1.0 and math.isfinite(pad_factor)):
        raise ValueError(f"pad_factor must be >= 1, got {pad_factor}.")
    mh, mw = _fft_size(math.ceil(pad_factor * h)), _fft_size(math.ceil(pad_factor * w))
    amp, which = amplitude(mh, mw)
    # Weights of the half-plane rows in the full-plane sum: ky = 0 and ky = Nyquist once.
    weight = torch.full((mh // 2 + 1, 1), 2.0, dtype=dtype, device=device)
    weight[0] = 1.0
    weight[-1] = 1.0
    total = (amp.square() * weight).sum(dim=(-2, -1), keepdim=True)
    amp = amp * (mh * mw / torch.sqrt(total))

    z = _randn_complex(lead + (mh // 2 + 1, mw), generator, draw_device, dtype).to(device)
    # Hermitian symmetry along kx on the rows ky = 0 and ky = Nyquist:
    # Z[m] = (A[m] + conj(A[-m])) / sqrt(2) keeps E|Z|^2 = 1 (real with variance 1 at m = -m).
    flip = (-torch.arange(mw, device=device)) % mw
    rows = [0, mh // 2]
    edge = z[..., rows, :]
    z[..., rows, :] = (edge + edge[..., flip].conj()) * (0.5 ** 0.5)
    # real filter on the real view (no complex copy of amp); fields that share a spectrum
    # are filtered run by run, without materialising one spectrum per field
    z_real = torch.view_as_real(z).reshape((-1,) + z.shape[-2:] + (2,))
    if which is None:
        z_real.mul_(amp[0, ..., None])
    else:
        runs, lengths = torch.unique_consecutive(which.reshape(-1), return_counts=True)
        ends = torch.cumsum(lengths, 0).tolist()
        for end, index, length in zip(ends, runs.tolist(), lengths.tolist()):
            z_real[end - length:end].mul_(amp[index, ..., None])
    # Complex inverse FFT along x (contiguous), crop the columns, then the real inverse FFT
    # along y, crop the rows.
    y = torch.fft.ifft(z, dim=-1)[..., :w]
    del z
    return torch.fft.irfft(y, n=mh, dim=-2)[..., :h, :]


def _k2_grid(mh, mw, dtype, device):
    """Squared radial wavenumber [(cycles per pixel)^2] on the half-plane ky >= 0, (mh//2+1, mw)."""
    ky = torch.fft.rfftfreq(mh, dtype=dtype, device=device)
    kx = torch.fft.fftfreq(mw, dtype=dtype, device=device)
    return ky[:, None] ** 2 + kx[None, :] ** 2


def _distinct(length_px, lead):
    """Distinct values of a tensor broadcastable to ``lead``.

    Returns ``(distinct values (P,), index of each field's value, shape lead)``.
    """
    lengths, which = torch.unique(length_px.expand(lead).reshape(-1), return_inverse=True)
    return lengths, which.reshape(lead)


def _exponential_amplitude(length_px, lead, dtype, device):
    """Filter for the covariance exp(-r / L) by circulant embedding (Dietrich & Newsam 1997).

    The covariance is sampled on the ``mh x mw`` torus with minimum-image distances; its
    FFT is the PSD ``(1 + (2 pi k L)^2)^(-3/2)`` folded (aliased) onto the pixel grid.
    Negative eigenvalues (the embedding is not always non-negative definite) are set to 0.
    ``length_px`` [pixels] broadcasts to the fields' leading dimensions ``lead``; one FFT
    per distinct length.
    """
    def amplitude(mh, mw):
        dy = torch.arange(mh, device=device, dtype=dtype)
        dx = torch.arange(mw, device=device, dtype=dtype)
        dy, dx = torch.minimum(dy, mh - dy), torch.minimum(dx, mw - dx)
        r = torch.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
        lengths, which = _distinct(length_px, lead)
        cov = torch.exp(-r / lengths[:, None, None])                     # (P, mh, mw)
        eig = torch.fft.rfftn(cov, dim=(-1, -2)).real                    # halves dim -2
        return torch.sqrt(eig.clamp(min=0.0)), which
    return amplitude


def _quantile(x, q):
    """Linear-interpolation quantile of ``x`` over its last dimension; ``q`` broadcasts to ``x.shape[:-1]``."""
    s, _ = torch.sort(x, dim=-1)
    n = s.shape[-1]
    q = torch.as_tensor(q, dtype=s.dtype, device=s.device).expand(s.shape[:-1])
    pos = q * (n - 1)
    lo = pos.floor().clamp(0, n - 1).long()
    hi = (lo + 1).clamp(max=n - 1)
    frac = pos - lo.to(s.dtype)
    v_lo = torch.gather(s, -1, lo[..., None])[..., 0]
    v_hi = torch.gather(s, -1, hi[..., None])[..., 0]
    return v_lo + frac * (v_hi - v_lo)


# --------------------------------------------------------------------------------------
# InSAR
# --------------------------------------------------------------------------------------

def turbulence(shape: Sequence[int], pixel_m: float, sigma_m: Amplitude, corr_length_m: Amplitude,
               kind: str = "powerlaw", generator: Optional[torch.Generator] = None, device=None,
               dtype: torch.dtype = torch.float32, *, pad_factor: float = PAD_FACTOR) -> torch.Tensor:
    """Turbulent atmospheric delay: spatially correlated Gaussian random fields.

    White Gaussian noise is filtered in the Fourier domain on a grid ``pad_factor`` times
    larger than the map in each direction and cropped, so the maps are not periodic.

    Parameters
    ----------
    shape : sequence of int
        ``(..., H, W)``: any leading dimensions (scenes, tracks, epochs), then rows, columns.
    pixel_m : float
        Pixel size [m].
    sigma_m : float or Tensor
        Standard deviation of the delay [m], broadcastable to ``shape[:-2]``. It is the
        *expected* (ensemble) standard deviation of every pixel, not the spatial standard
        deviation of each map: a single map, whose largest scales are few, scatters around
        it (and its spatial standard deviation about its own mean is smaller).
        Typical: ``TURBULENCE_SIGMA_M`` (5-15 mm).
    corr_length_m : float or Tensor
        [m], broadcastable to ``shape[:-2]``. ``"exponential"``: the e-folding length ``L``
        of the covariance. ``"powerlaw"``: the wavelength ``L`` at which the spectrum bends
        from the large-scale to the small-scale slope. Typical: ``CORRELATION_LENGTH_M``.
    kind : {"powerlaw", "exponential"}
        Spectrum, see Notes.
    generator : torch.Generator, optional
        Source of randomness; numbers are drawn on its device.
    device : torch.device or str, optional
        Device of the result (default: the generator's device, else CPU).
    dtype : torch.dtype
        ``torch.float32`` or ``torch.float64``.
    pad_factor : float
        Size of the generating grid relative to the map (>= 1; default ``PAD_FACTOR`` = 2).
        Smaller is faster; periodic wrap-around then correlates the opposite edges more.

    Returns
    -------
    Tensor
        ``shape`` [m], zero expected mean.

    Notes
    -----
    With ``k`` the radial wavenumber in cycles per metre, the 2-D power spectral
    densities are

    ``"powerlaw"``: ``P(k) ∝ k^(-8/3) (1 + (k L)^2)^(-1/2)``, ``P(0) = 0``.
        Hanssen (2001) [1], ch. 4, describes the delay by 1-D (profile) power laws
        ``P1(f) ∝ f^-beta`` with beta = 5/3 at scales larger than the thickness of the
        turbulent wet layer (2-D, thin-layer turbulence) and beta = 8/3 at smaller scales
        (3-D Kolmogorov turbulence). For an isotropic field the 1-D spectrum of a profile
        is the 2-D spectrum integrated over the other wavenumber, one power shallower, so
        the 2-D slopes are -8/3 for ``k << 1/L`` and -11/3 for ``k >> 1/L``; ``L`` is the
        crossover *wavelength*. Hanssen puts the crossover at a few km (the wet-layer
        thickness); ``corr_length_m = 2e3`` reproduces that, the 5-30 km of
        ``CORRELATION_LENGTH_M`` give smoother maps. Hanssen's spectra also show a
        flatter regime outside this band; it is not modelled. There is no outer scale
        other than the generating grid (``pad_factor`` x the map), and most of the
        variance sits at the largest scales, so single maps look partly like ramps.
    ``"exponential"``: ``P(k) ∝ (1 + (2 pi k L)^2)^(-3/2)``.
        The 2-D Fourier transform of the covariance ``C(r) = sigma^2 exp(-r / L)``
        (Lohman & Simons 2005 [3]; Emardson et al. 2003 [4]) is
        ``2 pi L^2 sigma^2 (1 + (2 pi k L)^2)^(-3/2)`` with ``k`` in cycles per metre, i.e.
        ``(1 + (kappa L)^2)^(-3/2)`` with the angular wavenumber ``kappa = 2 pi k``.
        The filter is not this PSD sampled at the grid's wavenumbers (that would drop the
        variance above the Nyquist wavenumber and make maps with ``L`` of a few pixels
        too smooth at the smallest lags) but the square root of the FFT of ``C`` sampled
        on the padded grid with minimum-image distances, i.e. the PSD folded onto the
        pixel grid: circulant embedding (Dietrich & Newsam 1997 [12]). The covariance
        inside the map is then exactly ``C`` at every lag, as long as the embedding is
        non-negative definite, which holds for ``L`` up to about a quarter of the map
        (``pad_factor = 2``). For longer ``L`` its few negative eigenvalues (at most ~2 % of
        the variance) are set to 0 and the covariance is close to, not exactly, ``C``.

    The power-law spectrum is sampled on the padded grid up to the Nyquist wavenumber (its
    variance is dominated by the largest scales, not the smallest).

    Cost: a filter is built once per distinct ``corr_length_m`` in the call
    (``"exponential"``: one FFT each), so scenes that share a length are cheap to batch.
    """
    shape = _check_shape(shape)
    pixel_m = _check_pixel(pixel_m)
    if kind not in TURBULENCE_KINDS:
        raise ValueError(f"Unknown turbulence kind {kind!r}; valid kinds: {', '.join(TURBULENCE_KINDS)}.")
    draw, out = _devices(generator, device)
    _complex_dtype(dtype)
    lead = shape[:-2]
    sigma = _param(sigma_m, "sigma_m", lead, out, dtype, low=0.0)
    length = _param(corr_length_m, "corr_length_m", lead, out, dtype, low=0.0, low_open=True)
    length_px = length / pixel_m

    if kind == "powerlaw":
        def amplitude(mh, mw):
            # sqrt(P) = k^(-4/3) (1 + k^2 L^2)^(-1/4), 0 at k = 0
            k2 = _k2_grid(mh, mw, dtype, out)
            k2_safe = torch.where(k2 > 0, k2, torch.ones_like(k2))
            slope = torch.where(k2 > 0, k2_safe ** (-2.0 / 3.0), torch.zeros_like(k2))
            lengths, which = _distinct(length_px, lead)
            return slope * torch.rsqrt(torch.sqrt(1.0 + k2 * lengths[:, None, None] ** 2)), which
    else:
        amplitude = _exponential_amplitude(length_px, lead, dtype, out)

    field = _unit_field(shape, amplitude, generator, draw, out, dtype, pad_factor)
    return field * sigma[..., None, None]


def stratified(dem_m: torch.Tensor, coeff_m_per_m: Amplitude) -> torch.Tensor:
    """Stratified (topography-correlated) tropospheric delay: ``coeff * (dem - mean(dem))``.

    Parameters
    ----------
    dem_m : Tensor
        Elevation ``(..., H, W)`` [m]. NaN pixels stay NaN and are left out of the mean.
    coeff_m_per_m : float or Tensor
        Delay per unit elevation [m of delay per m of elevation], one per epoch, shape
        ``(...)`` broadcastable with ``dem_m.shape[:-2]``. Typical magnitude:
        ``STRATIFIED_M_PER_M`` (0-20 mm/km, either sign).

    Returns
    -------
    Tensor
        ``broadcast(dem_m.shape[:-2], coeff.shape) + (H, W)`` [m], in ``dem_m``'s dtype and
        device; zero mean over each map.

    Notes
    -----
    The delay of a horizontally stratified troposphere grows linearly with the height
    difference between points (Fujiwara et al. 1999 [5]; Ghayournajarkar & Fukushima
    2022 [6]), with a coefficient that changes from acquisition to acquisition. The mean
    elevation of each map is removed because InSAR measures only differences: the
    constant part of ``coeff * dem`` is absorbed by the reference (and is unobservable
    after unwrapping), and leaving it would add an offset of ``coeff * mean(dem)``
    (e.g. 20 mm at 1 km mean elevation) that no real time series shows.
    """
    dem = torch.as_tensor(dem_m)
    if dem.dim() < 2:
        raise ValueError(f"dem_m must be (..., H, W), got shape {tuple(dem.shape)}.")
    if not dem.is_floating_point():
        dem = dem.to(torch.float32)
    coeff = torch.as_tensor(coeff_m_per_m, dtype=dem.dtype, device=dem.device)
    try:
        torch.broadcast_shapes(coeff.shape, dem.shape[:-2])
    except RuntimeError:
        raise ValueError(f"coeff_m_per_m of shape {tuple(coeff.shape)} does not broadcast with the "
                         f"DEM's leading dimensions {tuple(dem.shape[:-2])}.") from None
    centred = dem - torch.nanmean(dem, dim=(-2, -1), keepdim=True)
    return coeff[..., None, None] * centred


def ramp(shape: Sequence[int], pixel_m: float, slope_m_per_m: Amplitude,
         generator: Optional[torch.Generator] = None, device=None, dtype: torch.dtype = torch.float32,
         quadratic_m_per_m2: Amplitude = 0.0) -> torch.Tensor:
    """Long-wavelength (orbital) error: planar ramps of random direction, optional quadratic term.

    Parameters
    ----------
    shape : sequence of int
        ``(..., H, W)``.
    pixel_m : float
        Pixel size [m].
    slope_m_per_m : float or Tensor
        Magnitude of the ramp's gradient [m/m], broadcastable to ``shape[:-2]``. Typical:
        ``RAMP_M_PER_M`` (0.5 mm/km, METHOD.md).
    generator, device, dtype
        As in :func:`turbulence`.
    quadratic_m_per_m2 : float or Tensor
        Curvature ``c`` [m/m^2] of a parabola ``c s^2`` along a second random direction
        ``s`` (distance from the map centre), minus its map mean; broadcastable to
        ``shape[:-2]``. Its second derivative along ``s`` is ``2 c``. Default 0: residual
        orbital errors are mostly linear over one frame, quadratic terms appear for long
        frames (Fattahi & Amelung 2014 [7]).

    Returns
    -------
    Tensor
        ``shape`` [m], exactly zero mean over each map.

    Notes
    -----
    ``ramp = g (cos(a) x + sin(a) y) + c ((cos(b) x + sin(b) y)^2 - mean)``, with ``x`` east
    and ``y`` north from the map centre [m] and ``a``, ``b`` uniform in [0, 2 pi). Both
    directions are always drawn, so a seed gives the same plane with or without the
    quadratic term.
    """
    shape = _check_shape(shape)
    pixel_m = _check_pixel(pixel_m)
    _complex_dtype(dtype)
    draw, out = _devices(generator, device)
    lead, (h, w) = shape[:-2], shape[-2:]
    slope = _param(slope_m_per_m, "slope_m_per_m", lead, out, dtype, low=0.0)
    quad = _param(quadratic_m_per_m2, "quadratic_m_per_m2", lead, out, dtype)
    angles = torch.rand(lead + (2,), generator=generator, device=draw, dtype=dtype).to(out) * (2 * math.pi)
    a, b = angles[..., 0, None, None], angles[..., 1, None, None]
    x = (torch.arange(w, device=out, dtype=dtype) - (w - 1) / 2.0) * pixel_m        # east
    y = -(torch.arange(h, device=out, dtype=dtype) - (h - 1) / 2.0) * pixel_m       # north
    x, y = x[None, :], y[:, None]
    plane = slope[..., None, None] * (torch.cos(a) * x + torch.sin(a) * y)
    if not bool((quad == 0).all()):
        s = torch.cos(b) * x + torch.sin(b) * y
        # mean of s^2 over the grid: cos^2 mean(x^2) + sin^2 mean(y^2) (mean(x y) = 0)
        mean_x2 = pixel_m ** 2 * (w ** 2 - 1) / 12.0
        mean_y2 = pixel_m ** 2 * (h ** 2 - 1) / 12.0
        mean_s2 = torch.cos(b) ** 2 * mean_x2 + torch.sin(b) ** 2 * mean_y2
        plane = plane + quad[..., None, None] * (s ** 2 - mean_s2)
    return plane.expand(shape).contiguous()


def decorrelation_mask(shape: Sequence[int], pixel_m: float, fraction: Amplitude,
                       generator: Optional[torch.Generator] = None, device=None,
                       corr_length_m: float = DECORRELATION_PATCH_M) -> torch.Tensor:
    """Spatially clustered decorrelation holes. True = valid (coherent) pixel.

    Parameters
    ----------
    shape : sequence of int
        ``(..., H, W)``.
    pixel_m : float
        Pixel size [m].
    fraction : float or Tensor
        Expected fraction of invalid pixels in [0, 1], broadcastable to ``shape[:-2]``.
    generator, device
        As in :func:`turbulence`.
    corr_length_m : float
        e-folding length of the thresholded field [m], which sets the size of the holes
        (default ``DECORRELATION_PATCH_M`` = 2 km, a design choice).

    Returns
    -------
    BoolTensor
        ``shape``; True where the pixel is valid.

    Notes
    -----
    A unit-variance Gaussian field with covariance ``exp(-r / corr_length_m)`` (generated
    as in :func:`turbulence`, ``kind="exponential"``, in float32) is thresholded at
    ``Phi^-1(1 - fraction)``: every pixel is invalid with probability exactly
    ``fraction``, and invalid pixels come in patches of about ``corr_length_m`` with ragged
    edges and a few isolated pixels, like low-coherence areas. ``fraction = 0`` keeps
    every pixel, ``fraction = 1`` none.
    """
    shape = _check_shape(shape)
    pixel_m = _check_pixel(pixel_m)
    draw, out = _devices(generator, device)
    lead = shape[:-2]
    frac = _param(fraction, "fraction", lead, out, torch.float32, low=0.0, high=1.0)
    length = _param(corr_length_m, "corr_length_m", (), out, torch.float32, low=0.0, low_open=True)
    length_px = float(length) / pixel_m

    amplitude = _exponential_amplitude(torch.tensor(length_px, device=out), lead, torch.float32, out)
    field = _unit_field(shape, amplitude, generator, draw, out, torch.float32, PAD_FACTOR)
    threshold = torch.special.ndtri(1.0 - frac.to(torch.float64)).to(torch.float32)
    return field <= threshold[..., None, None]


# --------------------------------------------------------------------------------------
# GNSS
# --------------------------------------------------------------------------------------

def gnss_noise(shape: Sequence[int], white_h_m: Amplitude, white_v_m: Amplitude,
               rw_h_m_per_sqrt_day: Amplitude, rw_v_m_per_sqrt_day: Amplitude,
               common_mode_m: Amplitude = 0.0, generator: Optional[torch.Generator] = None,
               device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Daily GNSS position errors: white noise + random walk (+ common mode), east/north/up.

    Parameters
    ----------
    shape : sequence of int
        ``(..., S, D)``: leading dimensions, stations, days (daily samples).
    white_h_m, white_v_m : float or Tensor
        Standard deviation of the daily white noise [m], horizontal (east and north each)
        and vertical; broadcastable to ``shape[:-2]``. Typical: ``GNSS_WHITE_H_M`` = 2.3 mm,
        ``GNSS_WHITE_V_M`` = 6.8 mm.
    rw_h_m_per_sqrt_day, rw_v_m_per_sqrt_day : float or Tensor
        Random-walk amplitude [m / sqrt(day)]: the walk's daily step has this standard
        deviation, so after ``n`` days it has wandered ``amp * sqrt(n)``. Typical:
        ``GNSS_RW_H_M_PER_SQRT_DAY``, ``GNSS_RW_V_M_PER_SQRT_DAY`` (1, 2 mm/sqrt(yr)).
    common_mode_m : float or Tensor
        Standard deviation [m] of a daily error shared by all ``S`` stations, drawn
        independently per day and per component (white in time), the same for the three
        components; broadcastable to ``shape[:-2]``. Default 0 (``GNSS_COMMON_MODE_M``:
        removed by the Wdowinski et al. 1997 [11] filter).
    generator, device, dtype
        As in :func:`turbulence`.

    Returns
    -------
    Tensor
        ``shape + (3,)`` [m], components (east, north, up) as ``conventions.ENU_BANDS``.

    Notes
    -----
    ``x[d] = w[d] + r[d] + c[d]`` with ``w`` white, ``r`` a random walk that starts at 0 on
    day 0 (``r[d] = sum of d steps``; Williams 2003 [9], Fukuda et al. 2008 [10]) and ``c``
    the common mode. Flicker noise (Mao et al. 1999 [8]) is not modelled. For lags ``n >= 1``,
    ``Var(x[d + n] - x[d]) = 2 (white^2 + common^2) + rw^2 n``. The three random draws
    (white, steps, common mode) always happen, whatever the amplitudes.
    """
    shape = _check_shape(shape)
    _complex_dtype(dtype)
    draw, out = _devices(generator, device)
    lead, days = shape[:-2], shape[-1]
    names = ("white_h_m", "white_v_m", "rw_h_m_per_sqrt_day", "rw_v_m_per_sqrt_day", "common_mode_m")
    values = (white_h_m, white_v_m, rw_h_m_per_sqrt_day, rw_v_m_per_sqrt_day, common_mode_m)
    wh, wv, rh, rv, cm = (_param(v, n, lead, out, dtype, low=0.0) for v, n in zip(values, names))

    def per_component(h, v):                                  # (..., 1, 1, 3)
        h, v = torch.broadcast_tensors(h, v)
        return torch.stack([h, h, v], dim=-1)[..., None, None, :]

    white = torch.randn(shape + (3,), generator=generator, device=draw, dtype=dtype).to(out)
    steps = torch.randn(shape + (3,), generator=generator, device=draw, dtype=dtype).to(out)
    common = torch.randn(lead + (1, days, 3), generator=generator, device=draw, dtype=dtype).to(out)
    walk = torch.cumsum(steps, dim=-2)
    walk = walk - walk[..., :1, :]
    return (white * per_component(wh, wv) + walk * per_component(rh, rv)
            + common * cm[..., None, None, None])


def gnss_gaps(shape: Sequence[int], gap_fraction: Amplitude, generator: Optional[torch.Generator] = None,
              device=None, mean_gap_days: float = GNSS_MEAN_GAP_DAYS) -> torch.Tensor:
    """Missing GNSS days: single days and multi-day outages. True = observed.

    Parameters
    ----------
    shape : sequence of int
        ``(..., S, D)``: leading dimensions, stations, days.
    gap_fraction : float or Tensor
        Expected fraction of missing days, broadcastable to ``shape[:-2]``; in
        ``[0, mean_gap_days / (1 + mean_gap_days)]`` (0.75 for the default 3-day gaps).
    generator, device
        As in :func:`turbulence`.
    mean_gap_days : float
        Mean length of a gap [days], >= 1 (default ``GNSS_MEAN_GAP_DAYS`` = 3, a design
        choice).

    Returns
    -------
    BoolTensor
        ``shape``; True where the day is observed.

    Notes
    -----
    Each station's record is a two-state Markov chain started in its stationary law: an
    observed day is followed by a missing one with probability
    ``p = f / ((1 - f) Lg)``, a missing day by an observed one with probability
    ``1 / Lg`` (``f`` the gap fraction, ``Lg`` the mean gap length). Every day is missing
    with probability exactly ``f``; gap lengths are geometric with mean ``Lg`` (with
    ``Lg = 3``: a third of the gaps are single days, the rest last several days).
    """
    shape = _check_shape(shape)
    draw, out = _devices(generator, device)
    lead = shape[:-2]
    lg = float(mean_gap_days)
    if not (lg >= 1.0 and math.isfinite(lg)):
        raise ValueError(f"mean_gap_days must be >= 1, got {mean_gap_days}.")
    fmax = lg / (1.0 + lg)
    frac = _param(gap_fraction, "gap_fraction", lead, out, torch.float64, low=0.0)
    if bool((frac > fmax + 1e-12).any()):
        raise ValueError(f"gap_fraction must be <= mean_gap_days / (1 + mean_gap_days) = {fmax:.3f} "
                         f"for gaps of mean length {lg:g} days, got {gap_fraction!r}; use longer gaps.")
    f = frac[..., None]                                            # (..., 1) against stations
    p_start = (f / ((1.0 - f) * lg)).clamp(max=1.0).to(torch.float32)
    p_stay = torch.full_like(p_start, 1.0 - 1.0 / lg)
    u = torch.rand(shape, generator=generator, device=draw, dtype=torch.float32).to(out)
    missing = torch.empty(shape, dtype=torch.bool, device=out)
    state = u[..., 0] < f.to(torch.float32)
    missing[..., 0] = state
    for d in range(1, shape[-1]):
        state = torch.where(state, u[..., d] < p_stay, u[..., d] < p_start)
        missing[..., d] = state
    return ~missing


# --------------------------------------------------------------------------------------
# Terrain
# --------------------------------------------------------------------------------------

def fractal_dem(shape: Sequence[int], pixel_m: float, relief_m: Amplitude, beta: float = DEM_BETA,
                generator: Optional[torch.Generator] = None, device=None,
                dtype: torch.dtype = torch.float32, sea_fraction: Amplitude = 0.0) -> torch.Tensor:
    """Fractal (self-affine) terrain with a power-law spectrum, optionally partly under the sea.

    Parameters
    ----------
    shape : sequence of int
        ``(..., H, W)``.
    pixel_m : float
        Pixel size [m] (the spectrum is scale-free, so it only fixes the units).
    relief_m : float or Tensor
        Spread between the 99th and 1st percentiles of each map's terrain [m] (exact, per
        map, before the sea is flooded), broadcastable to ``shape[:-2]``, > 0.
    beta : float
        Exponent of the 1-D (profile) spectrum ``P1(k) ∝ k^-beta``; the 2-D spectrum is
        ``k^-(beta + 1)`` and the surface's fractal dimension ``D = (7 - beta) / 2``
        (valid for 1 < beta < 3). Huang & Turcotte (1989) [2] find beta ~ 2 for real
        topography (D ~ 2.5); beta up to ~2.8 gives the smoother D ~ 2.1 also reported.
    generator, device, dtype
        As in :func:`turbulence`.
    sea_fraction : float or Tensor
        Fraction in [0, 1) of each map to put under the sea, broadcastable to
        ``shape[:-2]``.

    Returns
    -------
    Tensor
        ``shape`` [m], >= 0. With ``sea_fraction = 0`` every pixel is > 0 (the lowest at
        ``0.01 * relief_m``); otherwise the lowest ``sea_fraction`` of the pixels are
        exactly 0 (sea, for a caller that marks ``dem <= 0`` as sea) and the rest > 0 are
        heights above the coast level.
    """
    shape = _check_shape(shape)
    pixel_m = _check_pixel(pixel_m)
    _complex_dtype(dtype)
    beta = float(beta)
    if not (1.0 < beta < 4.0):
        raise ValueError(f"beta must be in (1, 4) (1-D spectral exponent; ~2 for real topography), got {beta}.")
    draw, out = _devices(generator, device)
    lead, (h, w) = shape[:-2], shape[-2:]
    relief = _param(relief_m, "relief_m", lead, out, dtype, low=0.0, low_open=True)
    sea = _param(sea_fraction, "sea_fraction", lead, out, dtype, low=0.0, high=1.0)
    if bool((sea >= 1.0).any()):
        raise ValueError(f"sea_fraction must be < 1, got {sea_fraction!r}.")

    def amplitude(mh, mw):
        k2 = _k2_grid(mh, mw, dtype, out)
        k2_safe = torch.where(k2 > 0, k2, torch.ones_like(k2))
        return torch.where(k2 > 0, k2_safe ** (-(beta + 1.0) / 4.0), torch.zeros_like(k2))[None], None

    field = _unit_field(shape, amplitude, generator, draw, out, dtype, PAD_FACTOR)
    flat = field.reshape(lead + (h * w,))
    spread = _quantile(flat, 0.99) - _quantile(flat, 0.01)
    scaled = flat * (relief.expand(lead) / spread)[..., None]
    sea = sea.expand(lead)
    level = torch.where(sea > 0, _quantile(scaled, sea),
                        scaled.amin(dim=-1) - _LAND_FLOOR_FRACTION * relief.expand(lead))
    dem = (scaled - level[..., None]).clamp(min=0.0)
    return dem.reshape(shape)
