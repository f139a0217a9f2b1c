"""Image-quality metrics for displacement maps: SSIM / mean SSIM (Wang et al. 2004) and RMSE.

The numpy functions (:func:`ssim`, :func:`ssim_map`, :func:`rmse`) need only numpy and scipy;
:func:`ssim_torch` imports torch when called and is differentiable (a training loss).

Both SSIM implementations reproduce ``skimage.metrics.structural_similarity(pred, truth,
data_range=..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` on NaN-free
images, and extend it to images with NaN (no data) by normalised convolution.

References
----------
.. [1] Wang, Z., Bovik, A. C., Sheikh, H. R., & Simoncelli, E. P. (2004). Image quality
   assessment: from error visibility to structural similarity. IEEE Transactions on Image
   Processing, 13(4), 600-612. doi:10.1109/TIP.2003.819861
.. [2] Knutsson, H., & Westin, C.-F. (1993). Normalized and differential convolution.
   Proceedings of IEEE CVPR 1993, 515-523. doi:10.1109/CVPR.1993.341081
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage

from .conventions import ENU_BANDS

#: Constants of Wang et al. (2004), Sec. III-C: C1 = (K1 L)^2, C2 = (K2 L)^2.
K1, K2 = 0.01, 0.03
#: Standard deviation [pixels] of the Gaussian window (Wang et al. 2004, Sec. III-C).
SIGMA = 1.5
#: The Gaussian is truncated at this many sigma (scikit-image's choice for an 11-tap window).
TRUNCATE = 3.5
#: Window radius [pixels] = int(TRUNCATE * SIGMA + 0.5), as scipy.ndimage computes it: 5.
RADIUS = int(TRUNCATE * SIGMA + 0.5)
#: Window side [pixels]: 11.
WIN_SIZE = 2 * RADIUS + 1


def gaussian_window_1d() -> np.ndarray:
    """The normalised 1-D Gaussian taps (length :data:`WIN_SIZE`) that scipy.ndimage uses.

    ``w[k] = exp(-k^2 / (2 SIGMA^2)) / sum``, ``k = -RADIUS..RADIUS``; the 2-D window is the
    outer product ``w w^T`` (separable).
    """
    k = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    w = np.exp(-0.5 / (SIGMA * SIGMA) * k ** 2)
    return w / w.sum()


def _check_pair(pred, truth):
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape:
        raise ValueError(f"pred and truth must have the same shape, got {pred.shape} and {truth.shape}.")
    if pred.ndim != 2:
        raise ValueError(f"SSIM is computed on one 2-D component at a time, got {pred.ndim} dimensions.")
    if min(pred.shape) < WIN_SIZE:
        raise ValueError(f"Images must be at least {WIN_SIZE} x {WIN_SIZE} pixels (the Gaussian "
                         f"window), got {pred.shape[0]} x {pred.shape[1]}.")
    return pred, truth


def default_data_range(truth) -> float:
    """``max - min`` of ``truth`` over its finite pixels, the default ``data_range`` of SSIM.

    Raises ``ValueError`` when ``truth`` has no finite pixel or is constant, because SSIM's
    stabilising constants would then be zero and the result meaningless: pass the physical
    scale explicitly in that case.
    """
    values = np.asarray(truth, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("The truth has no finite pixel; SSIM cannot be computed.")
    data_range = float(values.max() - values.min())
    if not data_range > 0:
        raise ValueError("The truth is constant (max - min = 0), so SSIM's default data_range "
                         "is zero; pass data_range explicitly (the physical scale of the "
                         "displacement, in the same unit as the images).")
    return data_range


def _filter_valid(field, weights):
    """Separable Gaussian filter of a 2-D field, cropped by RADIUS on every side.

    The cropped values equal those of ``scipy.ndimage.gaussian_filter(field, SIGMA,
    truncate=TRUNCATE, mode='reflect')[R:-R, R:-R]``: no pixel there reads the padding.
    """
    r = RADIUS
    rows = ndimage.correlate1d(field, weights, axis=0, mode="reflect")[r:-r]
    return ndimage.correlate1d(rows, weights, axis=1, mode="reflect")[:, r:-r]


def _ssim_band(pred, truth, valid, offset, data_range):
    """SSIM on the interior of a band of rows (the band includes the 2 RADIUS halo rows).

    Returns the SSIM values of the interior, shape (rows - 2R, W - 2R), and the mask of
    the interior pixels where it is defined (``None`` when every pixel is).
    """
    weights = gaussian_window_1d()
    # Both images are shifted by one constant before the second moments: var/cov are
    # shift invariant and the luminance term gets the offset back below, so the result is
    # unchanged while E[x^2] - E[x]^2 loses far fewer digits for offset fields.
    if valid is None:
        x = pred - offset
        y = truth - offset
        mx, my, sxx, syy, sxy = (_filter_valid(f, weights) for f in (x, y, x * x, y * y, x * y))
        inside = None
    else:
        x = np.where(valid, pred - offset, 0.0)
        y = np.where(valid, truth - offset, 0.0)
        w = _filter_valid(valid.astype(np.float64), weights)
        inside = valid[RADIUS:-RADIUS, RADIUS:-RADIUS]
        # At a valid pixel the window weight is >= the centre tap (~0.07): no division by 0.
        w[~inside] = 1.0
        mx, my, sxx, syy, sxy = (_filter_valid(f, weights) / w
                                 for f in (x, y, x * x, y * y, x * y))
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    ux = mx + offset
    uy = my + offset
    # S = (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2)), Wang et al. Eq. 13,
    # with vx = E[x^2] - ux^2 etc. (population moments), computed in place.
    sxy -= mx * my
    sxy *= 2.0
    sxy += c2                      # 2 vxy + C2
    sxx += syy
    sxx -= mx * mx
    sxx -= my * my
    sxx += c2                      # vx + vy + C2
    num = ux * uy
    num *= 2.0
    num += c1
    num *= sxy
    den = ux * ux
    den += uy * uy
    den += c1
    den *= sxx
    num /= den
    return num, inside


def _cpu_count():
    """CPUs this process may run on (affinity-aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _band_edges(n_out, workers):
    """Split ``n_out`` interior rows into bands: a few per thread, at least 32 rows each."""
    n_bands = max(1, min(4 * workers, n_out // 32))
    edges = np.linspace(0, n_out, n_bands + 1).round().astype(int)
    return list(zip(edges[:-1], edges[1:]))


def _ssim_bands(pred, truth, data_range):
    """Yield (row0, SSIM band, inside mask or None) over the interior, in parallel threads.

    scipy.ndimage releases the GIL, so bands of rows (each with its 2 RADIUS halo) are
    filtered concurrently; bands also keep the temporaries in cache.
    """
    valid = np.isfinite(pred) & np.isfinite(truth)
    all_valid = bool(valid.all())
    if not all_valid and not valid.any():
        return None
    offset = float(truth.mean() if all_valid else truth[valid].mean())
    n_out = pred.shape[0] - 2 * RADIUS
    workers = _cpu_count()
    bands = _band_edges(n_out, workers)

    def one(band):
        o0, o1 = band
        rows = slice(o0, o1 + 2 * RADIUS)
        s, inside = _ssim_band(pred[rows], truth[rows], None if all_valid else valid[rows],
                               offset, data_range)
        return o0, s, inside

    if workers <= 1 or len(bands) == 1:
        return [one(b) for b in bands]
    with ThreadPoolExecutor(max_workers=min(workers, len(bands))) as pool:
        return list(pool.map(one, bands))


def ssim_map(pred, truth, data_range=None) -> np.ndarray:
    """Local SSIM index of every pixel (Wang et al. 2004, Eq. 13 with a Gaussian window).

    Parameters
    ----------
    pred, truth : array_like, shape (H, W)
        One displacement component each, same unit; NaN = no data. H, W >= 11.
    data_range : float, optional
        Dynamic range ``L`` of the data (same unit as the images) in ``C1 = (0.01 L)^2``,
        ``C2 = (0.03 L)^2``. Default: ``truth.max() - truth.min()`` over finite pixels
        (:func:`default_data_range`).

    Returns
    -------
    numpy.ndarray, shape (H, W), float64
        SSIM per pixel; NaN where either image is NaN and in the border strip of
        :data:`RADIUS` pixels, where the window would leave the image.

    Notes
    -----
    Local means, variances and the covariance are Gaussian-weighted (sigma 1.5 px, 11 x 11
    taps) with population normalisation. Pixels that are NaN in either image get zero
    weight and the weights of each window are renormalised to sum to one (normalised
    convolution [2]_), so no-data pixels neither enter nor bias their neighbours' statistics.
    Without NaN this is exactly ``structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, full=True)[1]`` on the interior.

    References
    ----------
    .. [1] Wang, Z., Bovik, A. C., Sheikh, H. R., & Simoncelli, E. P. (2004). Image quality
       assessment: from error visibility to structural similarity. IEEE Trans. Image
       Process., 13(4), 600-612. doi:10.1109/TIP.2003.819861
    .. [2] Knutsson, H., & Westin, C.-F. (1993). Normalized and differential convolution.
       Proc. IEEE CVPR, 515-523. doi:10.1109/CVPR.1993.341081
    """
    pred, truth = _check_pair(pred, truth)
    data_range = default_data_range(truth) if data_range is None else _check_range(data_range)
    out = np.full(pred.shape, np.nan)
    for row0, s, inside in _ssim_bands(pred, truth, data_range) or []:
        if inside is not None:
            s[~inside] = np.nan
        out[RADIUS + row0:RADIUS + row0 + s.shape[0], RADIUS:-RADIUS] = s
    return out


def _check_range(data_range):
    value = float(data_range)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"data_range must be a positive finite number, got {data_range}.")
    return value


def ssim(pred, truth, data_range=None) -> float:
    """Mean structural similarity (mSSIM) of one 2-D displacement component.

    Parameters
    ----------
    pred, truth : array_like, shape (H, W)
        Prediction and reference, same unit (metres here); NaN = no data. H, W >= 11.
    data_range : float, optional
        Dynamic range ``L`` of the data, same unit as the images, in the stabilising
        constants ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2``. Default: ``truth.max() -
        truth.min()`` over the finite pixels of ``truth`` (not of ``pred``, so a prediction
        cannot change the yardstick it is measured with). A constant truth has no default:
        ``ValueError``.

    Returns
    -------
    float
        Mean of the SSIM map over the pixels finite in both images and at least
        ``RADIUS`` = 5 pixels from the image border; 1.0 for identical images. NaN when no
        such pixel exists (e.g. an all-NaN prediction).

    Raises
    ------
    ValueError
        Different shapes, not 2-D, smaller than 11 x 11, or a zero / non-finite data range.

    Notes
    -----
    To reproduce Wang et al. (2004) exactly, as scikit-image documents: Gaussian weights
    with sigma = 1.5 px (11 x 11 window), K1 = 0.01, K2 = 0.03, population (not sample)
    covariance, and the mean over the image minus a border of ``(11 - 1) // 2 = 5`` pixels.
    For NaN-free float64 images the result equals::

        skimage.metrics.structural_similarity(pred, truth, data_range=data_range,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False)

    to rounding (about 1e-12). Inputs are computed in float64 whatever their dtype (scikit-
    image keeps float32 in float32, so for float32 inputs the two agree to float32
    precision). NaN pixels are left out through normalised convolution (see
    :func:`ssim_map`): the local statistics of a window use only its finite pixels, with
    the Gaussian weights renormalised, and the mean runs over pixels finite in both images.

    The separable Gaussian filters run on bands of rows in parallel threads: on a 1000 x
    1000 pair this took half scikit-image's time on an idle 2-core machine and the same
    time on one core (``bench/bench_ssim.py`` measures both in one run).

    References
    ----------
    .. [1] Wang, Z., Bovik, A. C., Sheikh, H. R., & Simoncelli, E. P. (2004). Image quality
       assessment: from error visibility to structural similarity. IEEE Trans. Image
       Process., 13(4), 600-612. doi:10.1109/TIP.2003.819861

    Examples
    --------
    >>> import numpy as np
    >>> x = np.outer(np.hanning(64), np.hanning(64))
    >>> ssim(x, x)
    1.0
    """
    pred, truth = _check_pair(pred, truth)
    data_range = default_data_range(truth) if data_range is None else _check_range(data_range)
    total, count = 0.0, 0
    for _, s, inside in _ssim_bands(pred, truth, data_range) or []:
        if inside is None:
            total += float(s.sum(dtype=np.float64))
            count += s.size
        else:
            total += float(s[inside].sum(dtype=np.float64))
            count += int(inside.sum())
    return total / count if count else float("nan")


def rmse(pred, truth) -> float:
    """Root-mean-square difference over the pixels finite in both arrays.

    ``sqrt(mean((pred - truth)^2))`` in the unit of the inputs (metres here); NaN when no
    pixel is finite in both. Arrays of any (equal) shape.
    """
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape:
        raise ValueError(f"pred and truth must have the same shape, got {pred.shape} and {truth.shape}.")
    diff = pred - truth
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean(diff * diff)))


def within_sigma(error, std) -> tuple:
    """Fractions of ``|error| <= std`` and ``<= 2 std`` over the finite pairs, and their count.

    ``(within_1, within_2, n)``; NaN fractions when no pair is finite and ``std > 0``. A
    calibrated Gaussian uncertainty gives (0.683, 0.954).
    """
    err = np.abs(np.asarray(error, dtype=np.float64)).ravel()
    sd = np.broadcast_to(np.asarray(std, dtype=np.float64), np.shape(error)).ravel()
    ok = np.isfinite(err) & np.isfinite(sd) & (sd > 0)
    if not ok.any():
        return float("nan"), float("nan"), 0
    return float(np.mean(err[ok] <= sd[ok])), float(np.mean(err[ok] <= 2 * sd[ok])), int(ok.sum())


def _valid_blur_matrix(n, dtype, device):
    """(n - 2 RADIUS, n) matrix whose product with a column is its valid-mode Gaussian blur.

    Row ``i`` holds :func:`gaussian_window_1d` at columns ``i .. i + 2 RADIUS``: ``M @ x``
    equals ``scipy.ndimage.correlate1d(x, w)`` cropped by ``RADIUS`` at both ends.
    """
    import torch

    window = torch.as_tensor(gaussian_window_1d(), dtype=dtype, device=device)
    rows = n - 2 * RADIUS
    matrix = torch.zeros((rows, n), dtype=dtype, device=device)
    index = torch.arange(rows, device=device)[:, None] + torch.arange(WIN_SIZE, device=device)
    return matrix.scatter_(1, index, window.expand(rows, WIN_SIZE))


def gaussian_blur_valid(images):
    """The SSIM window's weighted sums, valid mode: (..., H, W) -> (..., H - 2 RADIUS, W - 2 RADIUS).

    The separable Gaussian (:func:`gaussian_window_1d`) as two products with banded matrices
    (:func:`_valid_blur_matrix`): the same sums as two 11-tap ``conv2d`` passes on one channel
    (pytorch-msssim's way), at a fraction of the CPU time forward and backward, because a
    one-channel convolution is oneDNN's slowest case and a matmul its fastest
    (``make bench`` measures both).
    """
    h, w = images.shape[-2:]
    rows = _valid_blur_matrix(h, images.dtype, images.device)
    cols = _valid_blur_matrix(w, images.dtype, images.device)
    return rows @ images @ cols.T


def ssim_torch(pred, truth, data_range, mask=None):
    """Differentiable mean SSIM of each image and channel of a batch (PyTorch, CPU or CUDA).

    Parameters
    ----------
    pred, truth : torch.Tensor, shape (B, C, H, W)
        Prediction and reference, same dtype and device; NaN = no data. H, W >= 11.
    data_range : float or torch.Tensor
        Dynamic range ``L`` per image and channel: a number, or a tensor broadcastable to
        (B, C) (e.g. ``truth.amax((-2, -1)) - truth.amin((-2, -1))`` for :func:`ssim`'s
        default). Must be > 0. Explicit here: a training loss should not rescale itself
        with every batch unnoticed.
    mask : torch.Tensor, optional
        Boolean (or 0/1) tensor broadcastable to (B, C, H, W); False pixels are treated
        like NaN. Pixels that are NaN in ``pred`` or ``truth`` are always excluded.

    Returns
    -------
    torch.Tensor, shape (B, C)
        Mean SSIM of each image and channel, same definition and numbers as :func:`ssim`
        (float64 agrees to about 1e-12); NaN where no pixel is valid. ``1 - ssim_torch(...)
        .mean()`` is a loss; gradients flow to ``pred`` (and ``truth``) and are finite even
        with NaN inputs (excluded pixels get zero gradient).

    Notes
    -----
    Same window, constants and normalised convolution as :func:`ssim_map`; the separable
    Gaussian by :func:`gaussian_blur_valid`, without padding (the border crop of Wang et
    al. / scikit-image). The per-image offset used for numerical conditioning is detached.
    """
    import torch

    if pred.shape != truth.shape or pred.dim() != 4:
        raise ValueError(f"pred and truth must both be (B, C, H, W), got {tuple(pred.shape)} "
                         f"and {tuple(truth.shape)}.")
    b, c, h, w = pred.shape
    if min(h, w) < WIN_SIZE:
        raise ValueError(f"Images must be at least {WIN_SIZE} x {WIN_SIZE} pixels, got {h} x {w}.")
    dtype, device = pred.dtype, pred.device
    valid = torch.isfinite(pred) & torch.isfinite(truth)
    if mask is not None:
        valid = valid & torch.as_tensor(mask, device=device).to(torch.bool).expand_as(pred)
    vf = valid.to(dtype)
    zero = torch.zeros((), dtype=dtype, device=device)
    count = vf.sum((-2, -1), keepdim=True)
    offset = (torch.where(valid, truth, zero).sum((-2, -1), keepdim=True)
              / count.clamp_min(1.0)).detach()
    x = torch.where(valid, pred - offset, zero)
    y = torch.where(valid, truth - offset, zero)
    stack = torch.stack([vf, x, y, x * x, y * y, x * y], dim=2)
    out = gaussian_blur_valid(stack)
    inside = valid[..., RADIUS:-RADIUS, RADIUS:-RADIUS]
    wsum = torch.where(inside, out[:, :, 0], torch.ones((), dtype=dtype, device=device))
    mx, my, sxx, syy, sxy = (out[:, :, i] / wsum for i in range(1, 6))
    vx = sxx - mx * mx
    vy = syy - my * my
    vxy = sxy - mx * my
    ux = mx + offset
    uy = my + offset
    dr = torch.as_tensor(data_range, dtype=dtype, device=device)
    if dr.dim() > 0:
        dr = dr.expand(b, c).reshape(b, c, 1, 1)
    if not bool(torch.all(dr > 0)):
        raise ValueError("data_range must be > 0 for every image and channel.")
    c1 = (K1 * dr) ** 2
    c2 = (K2 * dr) ** 2
    s = ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    s = torch.where(inside, s, zero)
    n = inside.to(dtype).sum((-2, -1))
    return s.sum((-2, -1)) / n


def component_scores(pred, truth, names=ENU_BANDS):
    """mSSIM and RMSE of each component of (K, H, W) stacks, never raising on missing data.

    Parameters
    ----------
    pred, truth : array_like, shape (K, H, W)
        Prediction and truth on the same grid [m]; NaN = no data.
    names : sequence of str
        Component names, length K.

    Returns
    -------
    list of dict
        Per component: ``name``, ``mssim`` (:func:`ssim` with the default data range),
        ``rmse`` [m] (:func:`rmse`), ``max_abs_truth`` [m], ``valid_fraction`` (pixels
        finite in both / all pixels) and ``note`` (why a value is NaN, else ""). A component
        without data in the prediction (e.g. north of an asc/desc decomposition) or a flat
        truth gives NaN with a note instead of an exception.
    """
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape or pred.ndim != 3 or pred.shape[0] != len(names):
        raise ValueError(f"pred and truth must both be ({len(names)}, H, W), got {pred.shape} "
                         f"and {truth.shape}.")
    scores = []
    for name, p, t in zip(names, pred, truth):
        both = np.isfinite(p) & np.isfinite(t)
        finite_truth = t[np.isfinite(t)]
        row = {"name": name, "mssim": float("nan"), "rmse": rmse(p, t),
               "max_abs_truth": float(np.abs(finite_truth).max()) if finite_truth.size else float("nan"),
               "valid_fraction": float(both.mean()), "note": ""}
        if not np.isfinite(p).any():
            row["note"] = "the prediction has no data for this component"
        elif finite_truth.size == 0:
            row["note"] = "the truth has no data for this component"
        elif not both.any():
            row["note"] = "prediction and truth have no valid pixel in common"
        else:
            try:
                row["mssim"] = ssim(p, t)
            except ValueError as exc:
                row["note"] = str(exc)
            else:
                if not math.isfinite(row["mssim"]):
                    row["note"] = ("no pixel valid in both at least 5 pixels inside the border "
                                   "(the SSIM window)")
        scores.append(row)
    return scores
