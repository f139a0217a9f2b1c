"""The dual-branch CNN of Okada & Fukushima (JpGU 2025): InSAR branch, GNSS branch, fusion.

* InSAR branch (``insar_layers`` = 10 convolutions by default): a small U-Net over the
  stacked ascending and descending epochs, the tracks' validity masks and LOS unit vectors,
  with the DEM concatenated as a feature map at full and at quarter resolution (after
  Rouet-Leduc et al. 2021, Nat. Commun. 12, 6480, who feed the DEM to the network so it can
  learn the topography-correlated delay).
* GNSS branch (``gnss_layers`` = 11 by default = ``gnss_temporal_layers`` 1-D convolutions
  over each station's 121 daily E/N/U samples (+ observed flag), shared by all stations,
  then 2-D convolutions on the grid). Per-station features are brought onto the grid by
  Gaussian-kernel weighted averages at several length scales (normalised convolution, Knutsson
  & Westin 1993), with the kernel weight sums as extra channels that tell the network how far
  the nearest stations are; stations outside the tile contribute by distance, so tiles see
  the network around them. The spreading and the 2-D convolutions run at quarter resolution
  (the station field is smooth at the 15-35 km station spacing) and are upsampled bilinearly.
* Fusion (``fusion_layers`` = 4): concatenated feature maps -> east, north, up in units of
  the scene's displacement scale (:mod:`.features`).
* Std head (``std_head``, optional): two layers on the fusion's last features -> the standard
  deviation of each component at each pixel, trained by the Gaussian negative
  log-likelihood (:func:`gaussian_nll`) with the mean detached, then calibrated per component
  (``std_scale`` and ``std_exponents``, :func:`.infer.calibrated_std`). The data-consistency
  step uses it as the network's sigma.
* Std context (``std_context``, optional): a per-tile factor on that sigma from the mean and
  spread of the fusion's last features over the tile (a small MLP, zero at the start). The
  errors' spread differs between scenes (noise, network, event size) by a factor of 3-6
  (p10-p90) while the two-layer head sees ~10 px around each pixel; with each scene's best
  factor (an oracle) v3's pooled errors would meet both coverage targets (0.71 / 0.94).
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from .configs import ModelConfig  # noqa: F401 (defined with the other configurations)
from .gnss_prior import krige_grid

#: ``std_exponents`` of a sigma calibrated by ``std_scale`` alone (each row: head sigma,
#: 1 + distance to the nearest station; see :func:`.infer.calibrated_std`).
IDENTITY_STD_EXPONENTS = torch.tensor([[1.0, 0.0]] * 3)

#: Days averaged at each end of the window for a station's net displacement.
NET_WINDOW_DAYS = 10

#: Bounds of the std head's log sigma, in the scene's displacement scale units: from 1e-4
#: to ~55 scale units (a network that is sure to 0.01 % of the scale, or lost).
LOG_STD_MIN, LOG_STD_MAX = -9.2, 4.0
#: The std head's sigma before training [scale units].
INITIAL_STD = 0.1
#: Hidden units of the std context's MLP.
STD_CONTEXT_HIDDEN = 32
#: The pixel size [m] at which the pixel-size input is 0 (log2 of pixel / this).
PIXEL_REFERENCE_M = 1000.0


def gaussian_nll(mean, std, target):
    """Mean Gaussian negative log-likelihood (constant dropped) of ``target``.

    ``0.5 ((t - mu) / sigma)^2 + log sigma`` per pixel and component (Nix & Weigend 1994,
    "Estimating the mean and variance of the target probability distribution"; Lakshminarayanan
    et al. 2017). The caller detaches ``mean`` to train the variance only (the mean keeps
    its own L1 + SSIM loss; Seitzer et al. 2022 show the NLL's weighting otherwise degrades
    the mean).
    """
    return (0.5 * ((target - mean) / std) ** 2 + torch.log(std)).mean()


class PixelNorm(nn.Module):
    """Layer normalisation over channels at each pixel (no spatial statistics).

    GroupNorm/InstanceNorm normalise over the whole image, which makes a pixel's output
    depend on the extent of the tile it was computed in; this does not, so tiled inference
    equals a single-tile run up to the receptive field (Ba et al. 2016, Layer Normalization,
    applied per pixel as in ConvNeXt, Liu et al. 2022).
    """

    def __init__(self, channels):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x):
        """(B, C, H, W) -> (B, C, H, W)."""
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _conv(cin, cout, stride=1, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
                         PixelNorm(cout), nn.GELU())


class InsarBranch(nn.Module):
    """U-Net over InSAR epochs + masks + LOS, DEM concatenated at two resolutions."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.width
        self.inp = _conv(cfg.insar_channels + 1, w)
        self.enc1 = _conv(w, w)
        self.down1 = _conv(w, 2 * w, stride=2)
        self.enc2 = _conv(2 * w, 2 * w)
        self.down2 = _conv(2 * w + 1, 4 * w, stride=2)
        # 8 fixed layers around the bottleneck; the rest sit at quarter resolution
        self.bottom = nn.Sequential(*[_conv(4 * w, 4 * w, dilation=2 if i % 2 == 0 else 1)
                                      for i in range(cfg.insar_layers - 8)])
        self.dec2 = _conv(6 * w, 2 * w)
        self.dec1 = _conv(3 * w, w)
        self.out = _conv(w, w)

    def forward(self, insar, dem):
        """(B, C, H, W), (B, 1, H, W) -> (B, width, H, W); H, W divisible by 4."""
        x1 = self.enc1(self.inp(torch.cat([insar, dem], 1)))
        x2 = self.enc2(self.down1(x1))
        dem4 = F.avg_pool2d(dem, 2)
        x3 = self.bottom(self.down2(torch.cat([x2, dem4], 1)))
        y2 = self.dec2(torch.cat([F.interpolate(x3, size=x2.shape[-2:], mode="bilinear",
                                                align_corners=False), x2], 1))
        y1 = self.dec1(torch.cat([F.interpolate(y2, size=x1.shape[-2:], mode="bilinear",
                                                align_corners=False), x1], 1))
        return self.out(y1)


class GnssBranch(nn.Module):
    """Temporal 1-D encoder per station -> Gaussian spreading on the grid -> 2-D convolutions."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        g = cfg.gnss_width
        layers, cin = [], 4
        for i in range(cfg.gnss_temporal_layers):
            stride = 2 if 0 < i < cfg.gnss_temporal_layers - 1 else 1
            layers += [nn.Conv1d(cin, g, 5, stride=stride, padding=2), nn.GELU()]
            cin = g
        self.temporal = nn.Sequential(*layers)
        # the net displacement (last minus first weeks) goes straight to the station feature too
        self.station = nn.Linear(2 * g + 3, g)
        self.scales = tuple(cfg.gnss_scales_px)
        spread_channels = len(self.scales) * (g + 1)
        spatial = cfg.gnss_layers - cfg.gnss_temporal_layers
        convs = [_conv(spread_channels, g)] + [_conv(g, g) for _ in range(spatial - 1)]
        self.spatial = nn.Sequential(*convs)

    def forward(self, gnss, xy, valid, height, width):
        """gnss (B, S, 4, D), xy (B, S, 2) pixels, valid (B, S).

        Returns the feature map (B, gnss_width, H, W), each station's net displacement over
        the window (B, S, 3; mean of the last 10 observed days minus the first 10) and
        whether that could be formed (B, S) bool.
        """
        b, s, c, d = gnss.shape
        h = self.temporal(gnss.reshape(b * s, c, d))                         # (B*S, g, d')
        summary = torch.cat([h.mean(-1), h.amax(-1)], 1)
        net, _, has_net = station_net_displacement(gnss, valid > 0)
        feat = self.station(torch.cat([summary.reshape(b, s, -1), net], -1))  # (B, S, g)
        feat = feat * valid[..., None]
        # the station field is smooth: spread and convolve at quarter resolution, then upsample
        f = 4
        hq, wq = -(-height // f), -(-width // f)
        ys = (torch.arange(hq, device=gnss.device, dtype=feat.dtype) + 0.5) * f
        xs = (torch.arange(wq, device=gnss.device, dtype=feat.dtype) + 0.5) * f
        dx2 = (xs[None, None, :] - xy[..., 0:1]) ** 2                        # (B, S, W/4)
        dy2 = (ys[None, None, :] - xy[..., 1:2]) ** 2                        # (B, S, H/4)
        maps = []
        for scale in self.scales:
            wx = torch.exp(-dx2 / (2 * scale ** 2))
            wy = torch.exp(-dy2 / (2 * scale ** 2)) * valid[..., None]
            # separable kernel: sum_s wy[s,h] wx[s,w] f[s,c]
            num = torch.einsum("bsh,bsw,bsc->bchw", wy, wx, feat)
            den = torch.einsum("bsh,bsw->bhw", wy, wx)[:, None]
            maps += [num / (den + 1e-3), torch.log(den + 1e-3)]
        low = self.spatial(torch.cat(maps, 1))
        return F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False), net, has_net


def station_net_displacement(gnss, valid):
    """Each station's net displacement over the window and its noise variance.

    ``gnss`` (B, S, 4, D): east/north/up (any unit) + observed flag, as
    :class:`.features.NetworkInputs` holds it; ``valid`` (B, S) bool. The net displacement
    is the mean of the last :data:`NET_WINDOW_DAYS` observed days minus the mean of the
    first ones; its variance is the sum of the two means' variances, each the scatter of
    its days about their mean divided by their count (white noise; a floor of one day's
    scatter when a window has a single day). Returns ``net`` (B, S, 3), ``net_var``
    (B, S, 3) and ``has_net`` (B, S) bool (both windows observed).
    """
    obs = gnss[:, :, 3]                                                      # (B, S, D)

    def window_stats(part):
        weight = obs[..., part]
        count = weight.sum(-1).clamp_min(1)[:, :, None]
        values = gnss[:, :, :3, part]
        mean = (values * weight[:, :, None]).sum(-1) / count
        scatter = (((values - mean[..., None]) ** 2) * weight[:, :, None]).sum(-1) / count
        return mean, scatter, count

    late, late_var, late_n = window_stats(slice(-NET_WINDOW_DAYS, None))
    early, early_var, early_n = window_stats(slice(0, NET_WINDOW_DAYS))
    net_var = late_var / late_n + early_var / early_n
    has_net = valid & (obs[..., :NET_WINDOW_DAYS].sum(-1) > 0) & (obs[..., -NET_WINDOW_DAYS:].sum(-1) > 0)
    return late - early, net_var, has_net


def kriging_tile(xy, net, net_var, has_net, height, width):
    """Bounded prior (B, 3, H, W) on a tile's pixel centres (:func:`.gnss_prior.krige_grid`).

    ``xy`` (B, S, 2) in pixels from the tile's corner (x right, y down); the correlation
    length falls back to a quarter of the tile's side with fewer than two stations.
    Without a usable station the prior is zero.
    """
    xs = torch.arange(width, device=xy.device, dtype=torch.float64) + 0.5
    ys = torch.arange(height, device=xy.device, dtype=torch.float64) + 0.5
    fallback = torch.full((xy.shape[0],), max(height, width) / 4.0, dtype=torch.float64, device=xy.device)
    mean, _ = krige_grid(xy, net, net_var, has_net, xs, ys, fallback_length=fallback, with_std=False)
    return mean


#: Length [pixels] that normalises station coordinates in the spline system (conditioning).
SPLINE_LENGTH_PX = 64.0


def thin_plate_spline(xy, values, valid, height, width, smoothing=1e-3):
    """Thin-plate spline through station values, on the pixel-centre grid of a tile.

    Duchon (1977), Wahba (1990, Spline Models for Observational Data, ch. 2): ``f(p) =
    a0 + a . p + sum_i w_i U(|p - p_i|)``, ``U(r) = r^2 log r``, with ``(K + lambda I) w + P a
    = v`` and ``P^T w = 0``. ``xy`` (B, S, 2) [pixels], ``values`` (B, S, C), ``valid``
    (B, S) -> (B, C, H, W). Invalid stations get zero weight; with fewer than three valid
    stations a tiny ridge keeps the affine part solvable (it tends to the mean). Solved in
    float64 (the saddle-point system is ill-conditioned in float32).
    """
    b, s, c = values.shape
    dtype = values.dtype
    scale = SPLINE_LENGTH_PX      # fixed, not the tile size: every tile evaluates one function
    v = valid.to(torch.float64)
    p = xy.to(torch.float64) / scale

    def kernel(a, q):
        # U(r) = r^2 log r = r2 log(r2) / 2 with r2 = |a|^2 + |q|^2 - 2 a.q (no sqrt, one matmul)
        r2 = ((a * a).sum(-1)[..., :, None] + (q * q).sum(-1)[..., None, :]
              - 2.0 * a @ q.transpose(-1, -2)).clamp_min(0.0)
        return torch.where(r2 > 1e-20, 0.5 * r2 * torch.log(r2.clamp_min(1e-20)), torch.zeros_like(r2))

    k = kernel(p, p) * (v[:, :, None] * v[:, None, :])
    k = k + torch.diag_embed(smoothing * v + (1.0 - v))
    poly = torch.cat([torch.ones_like(p[..., :1]), p], -1) * v[..., None]           # (B, S, 3)
    ridge = -1e-9 * torch.eye(3, dtype=torch.float64, device=p.device).expand(b, 3, 3)
    system = torch.cat([torch.cat([k, poly], -1), torch.cat([poly.transpose(1, 2), ridge], -1)], 1)
    rhs = torch.cat([values.to(torch.float64) * v[..., None],
                     torch.zeros((b, 3, c), dtype=torch.float64, device=p.device)], 1)
    coef = torch.linalg.solve(system, rhs)                                           # (B, S+3, C)
    ys = (torch.arange(height, device=p.device, dtype=torch.float64) + 0.5) / scale
    xs = (torch.arange(width, device=p.device, dtype=torch.float64) + 0.5) / scale
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1).expand(b, -1, -1)      # (B, HW, 2)
    kg = kernel(grid, p) * v[:, None, :]
    out = kg @ coef[:, :s] + torch.cat([torch.ones_like(grid[..., :1]), grid], -1) @ coef[:, s:]
    return out.transpose(1, 2).reshape(b, c, height, width).to(dtype)


class DualBranchNet(nn.Module):
    """InSAR branch + GNSS branch -> fusion -> (B, 3, H, W) east/north/up in scene scale units.

    With ``residual_on_gnss_spline`` (default) the fusion also sees, and corrects, an
    interpolation of the stations' net displacements (``gnss_prior``: kriging by default,
    bounded away from the stations): the network starts from the classical GNSS peer and
    learns where InSAR and the time series improve on it.
    """

    def __init__(self, cfg: ModelConfig = ModelConfig()):  # noqa: B008 (frozen, immutable)
        super().__init__()
        self.config = cfg
        self.insar = InsarBranch(cfg)
        self.gnss = GnssBranch(cfg)
        w = cfg.width + cfg.gnss_width + (3 if cfg.residual_on_gnss_spline else 0)
        fusion = [_conv(w, cfg.width)] + [_conv(cfg.width, cfg.width) for _ in range(cfg.fusion_layers - 2)]
        self.fusion = nn.Sequential(*fusion, nn.Conv2d(cfg.width, 3, 1))
        self.pixel_bias = None
        if cfg.pixel_size_input:
            # a bias per fusion input channel from log2(pixel / 1 km): zero at the start, so a
            # trained network given this input computes what it did before (adapted_model)
            self.pixel_bias = nn.Linear(1, w)
            nn.init.zeros_(self.pixel_bias.weight)
            nn.init.zeros_(self.pixel_bias.bias)
        self.std_head = None
        if cfg.std_head:
            # on the fusion's last features (what the mean is a linear read-out of); starts
            # near sigma = INITIAL_STD everywhere
            last = nn.Conv2d(cfg.width, 3, 1)
            nn.init.normal_(last.weight, std=1e-3)
            nn.init.constant_(last.bias, math.log(INITIAL_STD))
            self.std_head = nn.Sequential(_conv(cfg.width, cfg.width), last)
            #: per-component factors on the head's sigma, fitted after training so that 68 % of
            #: held-out errors lie within one sigma (temperature scaling, Guo et al. 2017,
            #: "On calibration of modern neural networks", ICML; Kuleshov et al. 2018); applied
            #: by :func:`.infer.calibrated_std`, not by the forward pass, which training fits
            self.register_buffer("std_scale", torch.ones(3))
            #: per-component exponents of the head's sigma and of 1 + the distance to the
            #: nearest station in the calibrated sigma (:func:`.infer.calibrated_std`);
            #: (1, 0) is the plain factor above
            self.register_buffer("std_exponents", IDENTITY_STD_EXPONENTS.clone())
            #: per-component fraction of the network's departure from its GNSS interpolation
            #: added to the calibrated sigma in quadrature (:func:`.infer.calibrated_std`;
            #: ``calibrate --relative``); 0, as in every shipped model, leaves the sigma as it was
            self.register_buffer("std_relative", torch.zeros(3))
        self.std_context = None
        if cfg.std_context:
            # a log-factor per component from the tile's feature mean and standard deviation;
            # the last layer at zero, so a trained std head keeps its sigma at the start
            last = nn.Linear(STD_CONTEXT_HIDDEN, 3)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.std_context = nn.Sequential(nn.Linear(2 * cfg.width, STD_CONTEXT_HIDDEN), nn.GELU(), last)

    def forward(self, inputs, with_std: bool = False):
        """``inputs``: :class:`.features.NetworkInputs`; returns scaled E/N/U (B, 3, H, W).

        With ``with_std``: ``(mean, std)``, ``std`` (B, 3, H, W) the standard deviation of
        each component in the same scaled units (None for a network without a std head).
        """
        h, w = inputs.insar.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(f"Tile size must be divisible by 4, got {h} x {w}.")
        a = self.insar(inputs.insar, inputs.dem)
        g, net, has_net = self.gnss(inputs.gnss, inputs.gnss_xy, inputs.gnss_valid.to(a.dtype), h, w)
        prior = self.gnss_prior(inputs, h, w).to(a.dtype) if self.config.residual_on_gnss_spline else None
        fused = torch.cat([a, g] if prior is None else [a, g, prior], 1)
        if self.pixel_bias is not None:
            if inputs.pixel_m is None:
                raise ValueError("This network needs the working pixel size (NetworkInputs.pixel_m).")
            octaves = torch.log2(inputs.pixel_m.to(fused.dtype) / PIXEL_REFERENCE_M)[:, None]
            fused = fused + self.pixel_bias(octaves)[:, :, None, None]
        features = self.fusion[:-1](fused)
        mean = self.fusion[-1](features)
        if prior is not None:
            mean = prior + mean
        if not with_std:
            return mean
        if self.std_head is None:
            return mean, None
        # detached: the std head reads the features without shaping them (the mean network
        # trains as it would without the head)
        return mean, self.std_from_features(features.detach())

    def std_from_features(self, features):
        """The std head's raw sigma, exp(log sigma), before calibration (:func:`.infer.calibrated_std`).

        log sigma is clamped to [:data:`LOG_STD_MIN`, :data:`LOG_STD_MAX`] (scaled units) so
        the likelihood cannot run away on a pixel the head finds trivially easy.
        """
        log_std = self.std_head(features)
        if self.std_context is not None:
            pooled = torch.cat([features.mean((2, 3)), features.std((2, 3))], 1)
            log_std = log_std + self.std_context(pooled)[:, :, None, None]
        return torch.exp(log_std.clamp(LOG_STD_MIN, LOG_STD_MAX))

    @torch.no_grad()
    def gnss_prior(self, inputs, height, width):
        """The interpolation the network corrects (B, 3, H, W), in scene scale units.

        ``inputs.prior`` when the caller computed it for a whole scene (tiled inference:
        one field for every tile, no seam); else from the tile's stations.
        """
        if inputs.prior is not None:
            return inputs.prior
        net, net_var, has_net = station_net_displacement(inputs.gnss, inputs.gnss_valid)
        if self.config.gnss_prior == "thin_plate":
            return thin_plate_spline(inputs.gnss_xy, net, has_net, height, width, self.config.spline_smoothing)
        return kriging_tile(inputs.gnss_xy, net, net_var, has_net, height, width)


def adapted_model(model: DualBranchNet, overrides: dict) -> DualBranchNet:
    """A copy of ``model`` with architecture ``overrides`` that add or drop optional parts only.

    The optional parts are :data:`OPTIONAL_PARTS`. The trained weights are kept; a new std
    head starts untrained (:data:`INITIAL_STD`), a new pixel-size input and std context at
    zero (the mean, and the std head's sigma, are then the trained network's, bit for bit).
    Overrides that would change a trained layer raise ``ValueError``.
    """
    config = ModelConfig.from_dict({**model.config.to_dict(), **overrides})
    if config == model.config:
        return model
    adapted = DualBranchNet(config).to(next(model.parameters()).device)
    load_trained_state(adapted, model.state_dict(), f"The architecture options {sorted(overrides)}")
    return adapted


#: The optional parts of :class:`DualBranchNet` a trained network may gain or lose: their
#: ``ModelConfig`` flag and the state-dict names (prefixes) of their parameters and buffers.
OPTIONAL_PARTS = {"std_head": ("std_head.", "std_scale", "std_exponents", "std_relative"),
                  "pixel_size_input": ("pixel_bias.",),
                  "std_context": ("std_context.",)}
#: The parts that make up the std head (trained alone by ``TrainConfig.train_only = "std_head"``).
STD_PARTS = ("std_head", "std_context")


def with_calibration_defaults(model: DualBranchNet, state: dict) -> dict:
    """``state`` with the std calibration buffers files written before them lack, at their defaults.

    A model file or checkpoint from before ``std_exponents`` was calibrated by ``std_scale``
    alone, which the identity exponents reproduce exactly; one from before ``std_relative``
    had no term in the mean, which zeros reproduce exactly.
    """
    if getattr(model, "std_head", None) is None or "std_scale" not in state:
        return state
    defaults = {"std_exponents": IDENTITY_STD_EXPONENTS.clone(), "std_relative": torch.zeros(3)}
    return {**{k: v for k, v in defaults.items() if k not in state}, **state}


def load_trained_state(model: DualBranchNet, state: dict, what: str = "The weights") -> None:
    """Load a trained network's ``state`` into ``model``, which may add or lack optional parts.

    Parts ``model`` lacks are dropped from ``state``; parts ``state`` lacks keep their initial
    values (a new std head at :data:`INITIAL_STD`, a new pixel-size input or std context at
    zero). Any other difference raises ``ValueError`` saying that ``what`` change trained layers.
    """
    config = model.config
    state = {k: v for k, v in state.items() if getattr(config, _optional_part(k), True)}
    only = " and ".join(OPTIONAL_PARTS)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:            # a trained layer changes its shape
        raise ValueError(f"{what} change trained layers; only {only} may be added to a trained model "
                         f"({str(exc).splitlines()[1][:160]}).") from exc
    changed = [k for k in missing if not _optional_part(k)] + list(unexpected)
    if changed:
        raise ValueError(f"{what} change trained layers ({', '.join(changed[:4])}...); only {only} may be "
                         "added to a trained model.")


def _optional_part(name: str) -> str:
    """The ``ModelConfig`` flag of the optional part a state-dict entry belongs to, or ''."""
    return next((flag for flag, prefixes in OPTIONAL_PARTS.items() if name.startswith(prefixes)), "")


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
