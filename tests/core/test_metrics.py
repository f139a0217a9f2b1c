"""SSIM (Wang et al. 2004) against scikit-image, with NaN, in torch; RMSE; component scores."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from insar_gnss_3d.core.metrics import (RADIUS, WIN_SIZE, component_scores, gaussian_blur_valid,
                                        gaussian_window_1d, rmse, ssim, ssim_map, ssim_torch)

skimage_metrics = pytest.importorskip("skimage.metrics")


def reference(pred, truth, data_range, full=False):
    """scikit-image with the settings that reproduce Wang et al. (2004)."""
    return skimage_metrics.structural_similarity(
        pred, truth, data_range=data_range, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, full=full)


def smooth_field(shape, seed, scale=0.2):
    """A displacement-like field: two Gaussian lobes of opposite sign plus a ramp [m]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    y, x = y / shape[0], x / shape[1]
    cx, cy = rng.uniform(0.3, 0.7, 2)
    lobe = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.03)
    lobe2 = np.exp(-((x - cx - 0.15) ** 2 + (y - cy + 0.1) ** 2) / 0.02)
    return scale * (lobe - 0.5 * lobe2) + 0.01 * (x - y)


def fields(kind, shape=(97, 131), seed=0):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.standard_normal(shape), rng.standard_normal(shape)
    truth = smooth_field(shape, seed)
    if kind == "smooth":
        return smooth_field(shape, seed + 1), truth
    if kind == "field_plus_noise":
        return truth + 0.01 * rng.standard_normal(shape), truth
    if kind == "offset_field":  # a large common offset (reference) on top of the signal
        return truth + 1.0 + 0.003 * rng.standard_normal(shape), truth + 1.0
    raise ValueError(kind)


KINDS = ["noise", "smooth", "field_plus_noise", "offset_field"]


def test_window_is_skimage_11_taps():
    w = gaussian_window_1d()
    assert WIN_SIZE == 11 and RADIUS == 5 and w.shape == (11,)
    assert_allclose(w.sum(), 1.0, rtol=0, atol=1e-15)
    assert_allclose(w, w[::-1], rtol=0, atol=0)


def test_valid_blur_is_scipy_correlation_cropped():
    """The banded-matrix blur gives scipy.ndimage's separable correlation, minus the border."""
    torch = pytest.importorskip("torch")
    from scipy import ndimage

    images = np.random.default_rng(4).standard_normal((2, 3, 23, 17))
    expected = ndimage.correlate1d(ndimage.correlate1d(images, gaussian_window_1d(), axis=-2),
                                   gaussian_window_1d(), axis=-1)[..., RADIUS:-RADIUS, RADIUS:-RADIUS]
    got = gaussian_blur_valid(torch.from_numpy(images)).numpy()
    assert got.shape == (2, 3, 23 - 2 * RADIUS, 17 - 2 * RADIUS)
    assert_allclose(got, expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_equals_skimage(kind):
    pred, truth = fields(kind)
    data_range = truth.max() - truth.min()
    assert_allclose(ssim(pred, truth, data_range), reference(pred, truth, data_range),
                    rtol=0, atol=1e-6)
    # the default data_range is the truth's range
    assert_allclose(ssim(pred, truth), reference(pred, truth, data_range), rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(11, 11), (12, 40), (64, 64), (250, 301)])
def test_equals_skimage_on_shapes(shape):
    pred, truth = fields("field_plus_noise", shape=shape, seed=3)
    data_range = 0.5
    assert_allclose(ssim(pred, truth, data_range), reference(pred, truth, data_range),
                    rtol=0, atol=1e-6)


def test_map_equals_skimage_map_inside_the_crop():
    pred, truth = fields("field_plus_noise", seed=4)
    _, full = reference(pred, truth, 0.3, full=True)
    ours = ssim_map(pred, truth, 0.3)
    r = RADIUS
    assert np.isnan(ours[:r]).all() and np.isnan(ours[:, -r:]).all()
    assert_allclose(ours[r:-r, r:-r], full[r:-r, r:-r], rtol=0, atol=1e-9)


def test_identity_is_one():
    _, truth = fields("smooth", seed=5)
    assert ssim(truth, truth) == pytest.approx(1.0, abs=1e-12)
    truth_nan = truth.copy()
    truth_nan[10:20, 30:50] = np.nan
    assert ssim(truth_nan, truth_nan) == pytest.approx(1.0, abs=1e-12)


def test_symmetric_in_its_arguments_for_a_fixed_range():
    pred, truth = fields("smooth", seed=6)
    assert ssim(pred, truth, 0.4) == pytest.approx(ssim(truth, pred, 0.4), abs=1e-12)


def brute_force_ssim(pred, truth, data_range):
    """Direct definition with NaN: per valid pixel, Gaussian-weighted statistics over the
    finite pixels of its 11 x 11 window (weights renormalised), averaged over valid pixels
    at least RADIUS from the border."""
    w1 = gaussian_window_1d()
    w2 = np.outer(w1, w1)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    r = RADIUS
    values = []
    for i in range(r, pred.shape[0] - r):
        for j in range(r, pred.shape[1] - r):
            if not (np.isfinite(pred[i, j]) and np.isfinite(truth[i, j])):
                continue
            x = pred[i - r:i + r + 1, j - r:j + r + 1]
            y = truth[i - r:i + r + 1, j - r:j + r + 1]
            ok = np.isfinite(x) & np.isfinite(y)
            w = np.where(ok, w2, 0.0)
            w = w / w.sum()
            x, y = np.where(ok, x, 0.0), np.where(ok, y, 0.0)
            mx, my = (w * x).sum(), (w * y).sum()
            vx = (w * (x - mx) ** 2).sum()
            vy = (w * (y - my) ** 2).sum()
            vxy = (w * (x - mx) * (y - my)).sum()
            values.append((2 * mx * my + c1) * (2 * vxy + c2)
                          / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_nan_pixels_follow_the_direct_definition():
    pred, truth = fields("field_plus_noise", shape=(40, 47), seed=7)
    rng = np.random.default_rng(8)
    pred[rng.random(pred.shape) < 0.1] = np.nan
    truth[12:18, 20:31] = np.nan  # a hole (water, decorrelation)
    value = ssim(pred, truth, 0.3)
    assert np.isfinite(value)
    assert_allclose(value, brute_force_ssim(pred, truth, 0.3), rtol=0, atol=1e-10)


def test_nan_only_outside_the_crop_equals_skimage_on_the_inner_region():
    """A NaN-free block surrounded by NaN: our mean over it equals skimage on the block."""
    pred, truth = fields("field_plus_noise", shape=(80, 90), seed=9)
    p = np.full((100, 110), np.nan)
    t = np.full((100, 110), np.nan)
    p[10:90, 10:100], t[10:90, 10:100] = pred, truth
    # skimage on the block averages pixels >= 5 from the block edge; ours averages every
    # valid block pixel, with windows cut by the NaN frame renormalised. Compare the maps.
    ours = ssim_map(p, t, 0.3)[10:90, 10:100]
    _, full = reference(pred, truth, 0.3, full=True)
    r = RADIUS
    assert_allclose(ours[r:-r, r:-r], full[r:-r, r:-r], rtol=0, atol=1e-9)
    assert np.isfinite(ours).all()


def test_all_nan_prediction_gives_nan_not_an_error():
    _, truth = fields("smooth", seed=10)
    assert np.isnan(ssim(np.full_like(truth, np.nan), truth))


@pytest.mark.parametrize("bad, message", [
    (dict(truth=np.zeros((20, 20))), "constant"),
    (dict(truth=np.full((20, 20), np.nan)), "no finite"),
    (dict(pred=np.ones((8, 20)), truth=np.arange(160.0).reshape(8, 20)), "at least 11"),
    (dict(pred=np.ones((20, 21))), "same shape"),
    (dict(data_range=0.0), "positive"),
    (dict(data_range=float("nan")), "positive"),
])
def test_bad_input_raises_value_error(bad, message):
    args = dict(pred=np.ones((20, 20)), truth=np.arange(400.0).reshape(20, 20), data_range=None)
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        ssim(args["pred"], args["truth"], args["data_range"])


def test_rmse():
    a = np.array([[0.0, 1.0], [np.nan, 3.0]])
    b = np.array([[0.0, 0.0], [5.0, 0.0]])
    assert rmse(a, b) == pytest.approx(np.sqrt((0 + 1 + 9) / 3))
    assert np.isnan(rmse(np.full(3, np.nan), np.zeros(3)))


def test_component_scores_nan_component():
    truth = np.stack([smooth_field((40, 40), s) for s in range(3)])
    pred = truth + 0.001
    pred[1] = np.nan
    scores = component_scores(pred, truth)
    assert [s["name"] for s in scores] == ["east", "north", "up"]
    assert np.isnan(scores[1]["mssim"]) and np.isnan(scores[1]["rmse"])
    assert "no data" in scores[1]["note"]
    assert scores[0]["rmse"] == pytest.approx(0.001)
    assert scores[0]["mssim"] == pytest.approx(ssim(pred[0], truth[0]))


torch = pytest.importorskip("torch")


def test_torch_matches_numpy_batched():
    pairs = [fields(kind, shape=(48, 56), seed=i) for i, kind in enumerate(KINDS)]
    pred = np.stack([p for p, _ in pairs]).reshape(2, 2, 48, 56)
    truth = np.stack([t for _, t in pairs]).reshape(2, 2, 48, 56)
    pred[0, 1, 5:9, 7:30] = np.nan
    truth[1, 0, 20:25, :] = np.nan
    data_range = np.nanmax(truth, axis=(-2, -1)) - np.nanmin(truth, axis=(-2, -1))
    got = ssim_torch(torch.from_numpy(pred), torch.from_numpy(truth), torch.from_numpy(data_range))
    assert got.shape == (2, 2)
    expected = [[ssim(pred[b, c], truth[b, c], data_range[b, c]) for c in range(2)] for b in range(2)]
    assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)
    # float64 agrees far better than the 1e-6 promise
    assert_allclose(got.numpy(), expected, rtol=0, atol=1e-10)


def test_torch_mask_equals_nan():
    pred, truth = fields("field_plus_noise", shape=(40, 40), seed=11)
    mask = np.ones_like(pred, dtype=bool)
    mask[10:20, 10:15] = False
    masked = ssim_torch(torch.from_numpy(pred)[None, None], torch.from_numpy(truth)[None, None],
                        0.3, mask=torch.from_numpy(mask)[None, None])
    pred_nan = np.where(mask, pred, np.nan)
    assert masked.item() == pytest.approx(ssim(pred_nan, truth, 0.3), abs=1e-10)


def test_torch_gradients_flow_and_are_finite_with_nan():
    pred, truth = fields("field_plus_noise", shape=(32, 32), seed=12)
    truth[3:8, 3:8] = np.nan
    p = torch.tensor(pred[None, None], requires_grad=True)
    loss = 1.0 - ssim_torch(p, torch.from_numpy(truth)[None, None], 0.3).mean()
    loss.backward()
    assert torch.isfinite(p.grad).all()
    assert p.grad.abs().sum() > 0
    assert (p.grad[0, 0, 3:8, 3:8] == 0).all()  # excluded pixels get no gradient
    # a gradient step increases SSIM
    with torch.no_grad():
        stepped = p - 1e-2 * p.grad / p.grad.abs().max()
    before = ssim(pred, truth, 0.3)
    after = ssim(stepped[0, 0].numpy(), truth, 0.3)
    assert after > before


def test_torch_float32_is_close():
    pred, truth = fields("offset_field", shape=(40, 40), seed=13)
    got = ssim_torch(torch.from_numpy(pred).float()[None, None],
                     torch.from_numpy(truth).float()[None, None], 0.3)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ssim(pred, truth, 0.3), abs=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_cuda_matches_cpu():
    pred, truth = fields("field_plus_noise", shape=(40, 40), seed=14)
    cpu = ssim_torch(torch.from_numpy(pred)[None, None], torch.from_numpy(truth)[None, None], 0.3)
    gpu = ssim_torch(torch.from_numpy(pred)[None, None].cuda(),
                     torch.from_numpy(truth)[None, None].cuda(), 0.3)
    assert gpu.item() == pytest.approx(cpu.item(), abs=1e-10)
