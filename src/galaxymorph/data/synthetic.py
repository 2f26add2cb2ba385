"""The synthetic sky: Galaxy10-like DECaLS cutouts rendered from simple physical models.

Every image is one 256 x 256 px cutout at the Legacy Surveys pixel scale (0.262 arcsec/px),
rendered in three bands (g, r, z) and shown as a Legacy-Survey-like asinh colour JPEG
(z, r, g -> R, G, B). The recipe, in the order the code runs:

1. **Draw parameters** for the class (:func:`draw_params`): Sersic bulges and ellipticals,
   exponential disks, Ferrers bars, logarithmic spiral arms with star-forming knots, edge-on
   disks with a sech^2 vertical profile and a dust lane, tidal features and companions for
   disturbed/merging systems; inclination, position angle, colours; the seeing (a Moffat PSF,
   FWHM 1.0-1.5 arcsec), the sky noise, field stars and faint background galaxies.
2. **Noiseless model** of the central galaxy (:func:`galaxy_model`), per band, in units of the
   sky noise. Tests measure physics on this (isophote shapes, arm Fourier power, colours).
3. **Scene**: galaxy + field stars (sub-pixel deltas) + background galaxies, convolved with
   the PSF by FFT; Gaussian sky noise plus source shot noise, slightly correlated like the
   resampled, JPEG-compressed real cutouts.
4. **Stretch** (:func:`asinh_rgb`): a Lupton et al. (2004) asinh mapping on the mean
   intensity, which keeps colours of bright cores, with the grey sky pedestal of the real JPEGs.

The ``difficulty`` knob (0..1) moves every prior toward the ambiguous end at once: weaker,
shorter, rounder bars, fainter arms, more inclined disks, fainter and smaller galaxies,
more noise and more field sources. ``scripts/calibrate_synthetic.py`` compares the result
with real cutouts; docs/synthetic.md shows how well they match.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
from scipy import special

from ..errors import DataError
from .galaxy10 import CLASS_NAMES, DECALS_PIXEL_SCALE, IMAGE_SHAPE, Galaxy10Writer, check_class_id, validate_classes

GENERATOR_VERSION = "galaxymorph-synthetic/2"
SIZE = IMAGE_SHAPE[0]
BANDS = ("g", "r", "z")
RENDERED_CLASSES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
SKY_PEDESTAL = np.array([34.0, 33.0, 32.5], dtype=np.float32)  # R, G, B grey of the real sky
DISPLAY_GAIN = 9.5  # output counts per unit flux near zero: sky noise ~10 counts like the real ones
SOFTENING = 6.0      # asinh softening (flux units): where the stretch turns logarithmic
BAND_NOISE_CORR = 0.75  # fraction of the noise variance shared by g, r, z
CHUNK = 32           # images per write
BAR_H = (9.0, 15.0)  # barred-spiral disk scale length, px, before the size factor (~1.8)
BAR_SB0 = (25.0, 90.0)  # barred-spiral disk central surface brightness, sky sigma per px

# Colours as (g, r, z) flux ratios relative to r, already in display units.
RED = np.array([0.86, 1.0, 1.06], dtype=np.float32)     # old stars: bulges, ellipticals
DISK = np.array([0.95, 1.0, 1.0], dtype=np.float32)    # mixed disk light
BLUE = np.array([1.22, 1.0, 0.86], dtype=np.float32)    # young stars: arms, knots
EDGE_RED = np.array([0.92, 1.0, 1.0], dtype=np.float32)  # extra reddening of edge-ons with bulges

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) - (SIZE - 1) / 2.0


# ---------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------
def sersic_b(n: float) -> float:
    """b_n such that R_e encloses half the light (Ciotti & Bertin 1999 expansion)."""
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def sersic(r: np.ndarray, n: float, re: float) -> np.ndarray:
    """Sersic surface brightness, normalised to unit total flux for a circular profile."""
    b = sersic_b(n)
    total = 2.0 * np.pi * re * re * n * np.exp(b) * special.gamma(2.0 * n) / b ** (2.0 * n)
    r = np.maximum(r, 0.35)  # the centre pixel: avoid the unsampled cusp of high-n profiles
    return (np.exp(-b * ((r / re) ** (1.0 / n) - 1.0)) / total).astype(np.float32)


def rotated(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along (u) and across (v) a direction at ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return c * x + s * y, -s * x + c * y


def ferrers(u: np.ndarray, v: np.ndarray, length: float, axis_ratio: float, index: float = 2.0) -> np.ndarray:
    """Projected Ferrers bar (1 - m^2)^index inside m < 1, normalised to unit flux."""
    m2 = (u / length) ** 2 + (v / (length * axis_ratio)) ** 2
    prof = np.clip(1.0 - m2, 0.0, None) ** index
    return prof / max(float(prof.sum()), 1e-12)


def moffat_psf_fft(fwhm_px: np.ndarray, beta: float) -> np.ndarray:
    """rfft2 of a unit-flux Moffat PSF centred on pixel (0, 0), one per band: (3, H, W//2+1)."""
    r2 = _XX ** 2 + _YY ** 2
    r2 = np.fft.ifftshift(r2 + 0.0)  # centre on pixel (0, 0) for circular convolution
    out = []
    for fw in fwhm_px:
        alpha = fw / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
        k = (1.0 + r2 / alpha ** 2) ** (-beta)
        out.append(np.fft.rfft2(k / k.sum()))
    return np.stack(out)


def _gauss_fft(sigma: float) -> np.ndarray:
    """rfft2 of a unit-sum Gaussian (the correlation of resampled/JPEG noise)."""
    fy = np.fft.fftfreq(SIZE)[:, None]
    fx = np.fft.rfftfreq(SIZE)[None, :]
    return np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx ** 2 + fy ** 2))


# ---------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------
def _check_class(class_id) -> int:
    c = check_class_id(class_id)
    if c not in RENDERED_CLASSES:
        raise DataError(f"the synthetic sky does not render class {c} ({CLASS_NAMES[c]}) yet")
    return c


def _check_difficulty(difficulty) -> float:
    try:
        d = float(difficulty)
    except (TypeError, ValueError):
        raise DataError(f"difficulty must be a number in [0, 1], got {difficulty!r}") from None
    if not 0.0 <= d <= 1.0:
        raise DataError(f"difficulty must be in [0, 1], got {d}")
    return d


def _jitter(colour: np.ndarray, rng: np.random.Generator, amount: float = 0.06) -> np.ndarray:
    return (colour * np.exp(rng.normal(0.0, amount, 3))).astype(np.float32)


def _disk_orientation(rng, d: float, max_incl_deg: float) -> tuple[float, float]:
    """Inclination (uniform in cos i up to max) and position angle, radians."""
    cos_min = np.cos(np.radians(max_incl_deg))
    return float(np.arccos(rng.uniform(cos_min, 1.0))), float(rng.uniform(0, np.pi))


def _spiral(rng, d: float, kind: str, h: float) -> dict:
    """A spiral-disk galaxy: bulge + exponential disk + arms (+ bar for kind 'barred')."""
    # barred spirals in Galaxy10 are mostly face-on-ish (bars are hard to call when inclined)
    incl, pa = _disk_orientation(rng, d, (30.0 + 30.0 * d) if kind == "barred" else (40.0 + 35.0 * d))
    p: dict = {"kind": kind, "h": h, "incl": incl, "pa": pa, "disk_colour": _jitter(DISK, rng),
               "arm_colour": _jitter(BLUE, rng), "bulge_colour": _jitter(RED, rng)}
    if kind == "barred":
        p["arm_colour"] = _jitter(0.5 * (DISK + BLUE), rng)  # older, redder disks than unbarred ones
        p["n_arms"] = 2
        p["pitch"] = float(np.radians(rng.uniform(12, 28)))
        p["bt"] = float(rng.uniform(0.06, 0.2))
        # weaker, shorter, fatter bars as difficulty grows; the disk keeps most of the light
        p["bar_frac"] = float(rng.uniform(0.14 - 0.08 * d, 0.26 - 0.12 * d))
        p["bar_len"] = float(rng.uniform(1.2 - 0.35 * d, 2.0 - 0.5 * d) * h)
        p["bar_q"] = float(rng.uniform(0.22 + 0.12 * d, 0.38 + 0.17 * d))
        p["bar_angle"] = float(rng.uniform(0, np.pi))
        p["arm_start"] = p["bar_len"]
        p["arm_amp"] = float(rng.uniform(0.35, 0.8) * (1 - 0.45 * d))
    elif kind == "tight":
        p["n_arms"] = int(rng.choice([2, 2, 3, 4]))
        p["pitch"] = float(np.radians(rng.uniform(7, 15)))
        p["bt"] = float(rng.uniform(0.15, 0.4))
        p["arm_start"] = float(rng.uniform(0.5, 1.0) * h)
        p["arm_amp"] = float(rng.uniform(0.3, 0.7) * (1 - 0.4 * d))
    else:  # loose
        p["n_arms"] = int(rng.choice([2, 2, 3, 4]))
        p["pitch"] = float(np.radians(rng.uniform(20, 35)))
        p["bt"] = float(rng.uniform(0.08, 0.25))
        p["arm_start"] = float(rng.uniform(0.4, 0.9) * h)
        p["arm_amp"] = float(rng.uniform(0.5, 0.9) * (1 - 0.4 * d))
    p["arm_phase"] = float(rng.uniform(0, 2 * np.pi))
    p["arm_width"] = float(rng.uniform(2.0, 4.0))  # sharpness exponent of the arm profile
    p["bulge_n"] = float(rng.uniform(1.5, 4.0))
    p["bulge_re"] = float(rng.uniform(0.15, 0.3) * 1.68 * h)
    p["bulge_q"] = float(rng.uniform(0.75, 1.0))
    p["n_knots"] = int(rng.poisson(8 if kind == "loose" else 4))
    p["knot_frac"] = float(rng.uniform(0.02, 0.08))
    return p


# At 0.8 the reference CNN, trained with its own recipe, scores on held-out synthetic 2-vs-5 images
# about what it scores on real ones (0.950 vs 0.945; docs/synthetic.md, "The difficulty knob").
DEFAULT_DIFFICULTY = 0.8


def draw_params(class_id: int, rng: np.random.Generator, difficulty: float = DEFAULT_DIFFICULTY) -> dict:
    """Draw one galaxy and its observing conditions for a Galaxy10 class.

    Returns a plain dict: ``class_id``, ``components`` (what :func:`galaxy_model` renders),
    ``flux`` (total r-band flux in sky-sigma units), ``center`` offset (px), and the
    observation: ``psf_fwhm_arcsec``, ``psf_beta``, ``sky_sigma``, ``n_stars``, ``n_bg``.
    """
    c = _check_class(class_id)
    d = _check_difficulty(difficulty)
    # size and brightness: fainter and smaller as difficulty grows
    size = float(1.8 * np.exp(rng.normal(0.0, 0.25)) * (1.0 - 0.3 * d * rng.uniform()))
    flux = float(np.exp(rng.uniform(np.log(12000), np.log(80000))) * (1.0 - 0.5 * d * rng.uniform()))
    p: dict = {"class_id": c, "difficulty": d}
    if c in (6, 7):
        flux *= 2.5 if c == 6 else 3.0  # big disks: keep their surface brightness like the real ones
    if c == 8:
        flux *= 4.0  # long thin disks: more light keeps their ends above the sky
    if c == 9:
        flux *= 1.6
    if c == 1:
        flux *= 1.8  # two galaxies share the light: keep each core as bright as real ones
    if c in (2, 3, 4):  # smooth: one red Sersic spheroid, rounder -> cigar
        q_range = {2: (0.78 - 0.1 * d, 1.0), 3: (0.5, 0.78), 4: (0.22, 0.48 + 0.05 * d)}[c]
        gal = {"kind": "smooth", "n": float(rng.uniform(2.5, 5.0) if c == 2 else rng.uniform(1.5, 4.0)),
               "re": float((np.exp(rng.uniform(np.log(6.0), np.log(18.0))) if c == 2 else rng.uniform(6.5, 14.0)) * size),
               "q": float(rng.uniform(*q_range)),
               "pa": float(rng.uniform(0, np.pi)), "colour": _jitter(RED, rng)}
        if d > 0 and rng.uniform() < 0.35 * d:  # a faint smooth outer disk: lenticular-looking
            gal["halo_frac"] = float(rng.uniform(0.1, 0.3))
            gal["halo_h"] = float(gal["re"] * rng.uniform(1.0, 1.8))
        # round ellipticals are bright and concentrated (saturated cores in the real JPEGs)
        flux *= 2.2 if c == 2 else 1.2
    elif c == 5:
        # big, bright disks: the flux follows from the disk's central surface brightness
        # (sky-sigma units per px), so the disk stays visible out to ~3.5 h = 40-80 px
        gal = _spiral(rng, d, "barred", float(rng.uniform(BAR_H[0], BAR_H[1]) * size))
        sb0 = float(np.exp(rng.uniform(np.log(BAR_SB0[0]), np.log(BAR_SB0[1]))) * (1.0 - 0.4 * d * rng.uniform()))
        flux = sb0 * 2.0 * np.pi * gal["h"] ** 2 / (1.0 - gal["bt"] - gal["bar_frac"])
    elif c == 6:
        gal = _spiral(rng, d, "tight", float(rng.uniform(9.0, 16.0) * size))
    elif c == 7:
        gal = _spiral(rng, d, "loose", float(rng.uniform(10.0, 18.0) * size))
    elif c in (8, 9):
        h_range, h_max = ((12.0, 20.0), 45.0) if c == 8 else ((8.0, 14.0), 32.0)
        # bulgeless edge-ons are young, bluish disks; edge-ons with bulges are red (old, dusty)
        disk, bulge = (0.5 * (DISK + BLUE), RED) if c == 8 else (RED * EDGE_RED, RED * EDGE_RED ** 2)
        gal = {"kind": "edgeon", "h": float(min(rng.uniform(*h_range) * size, h_max)), "pa": float(rng.uniform(0, np.pi)),
               "z0": float(rng.uniform(1.6, 3.2) * size * (1.8 if c == 8 else 1.25)), "incl": float(np.radians(rng.uniform(84, 90))),
               "disk_colour": _jitter(disk, rng), "bulge_colour": _jitter(bulge, rng),
               "dust": float(rng.uniform(0.0, 1.2) if c == 8 else rng.uniform(0.4, 1.5)), "bt": 0.0}
        if c == 8:  # h is capped at 45 px for big size factors: keep the disk thin anyway
            gal["z0"] = min(gal["z0"], 0.3 * gal["h"])
        if c == 9:
            gal["bt"] = float(rng.uniform(0.25 - 0.1 * d, 0.55 - 0.15 * d))
            gal["bulge_re"] = float(gal["h"] * rng.uniform(0.35, 0.7))
            gal["bulge_n"] = float(rng.uniform(2.0, 4.0))
            gal["bulge_q"] = float(rng.uniform(0.6, 0.9))
        else:
            gal["bt"] = float(rng.uniform(0.0, 0.04))
            gal["bulge_re"], gal["bulge_n"], gal["bulge_q"] = gal["z0"] * 1.5, 1.0, 0.8
    else:  # 0 disturbed, 1 merging: one or two galaxies with tidal arcs and clumps
        n_gal = 2 if c == 1 else 1
        gal = {"kind": "interacting", "members": [], "tails": [], "lopsided": float(rng.uniform(0.2, 0.6))}
        sep = float(rng.uniform(8.0, 28.0) * size)
        angle = float(rng.uniform(0, 2 * np.pi))
        for k in range(n_gal):
            off = (0.0, 0.0) if k == 0 else (sep * np.cos(angle), sep * np.sin(angle))
            red = rng.uniform() < 0.5
            gal["members"].append({
                "offset": off, "n": float(rng.uniform(1.0, 4.0)), "re": float(rng.uniform(3.0, 8.0) * size),
                "q": float(rng.uniform(0.4, 1.0)), "pa": float(rng.uniform(0, np.pi)),
                "weight": 1.0 if k == 0 else float(rng.uniform(0.3, 1.0)),
                "colour": _jitter(RED if red else DISK, rng)})
        for _ in range(int(rng.integers(1, 3))):
            gal["tails"].append({"start": float(rng.uniform(0, 2 * np.pi)), "sweep": float(rng.uniform(0.8, 2.5)),
                                 "r0": float(rng.uniform(6, 14) * size), "growth": float(rng.uniform(0.2, 0.6)),
                                 "width": float(rng.uniform(2.0, 5.0) * size), "frac": float(rng.uniform(0.1, 0.3)),
                                 "sign": float(rng.choice([-1.0, 1.0]))})
        gal["n_clumps"] = int(rng.poisson(4 if c == 0 else 2))
        gal["clump_colour"] = _jitter(BLUE, rng)
        gal["disk_colour"] = _jitter(DISK, rng)
    p["components"] = gal
    p["flux"] = flux
    p["center"] = (float(rng.normal(0, 1.5)), float(rng.normal(0, 1.5)))
    # observation: seeing, noise, crowding
    p["psf_fwhm_arcsec"] = float(rng.uniform(1.0, 1.5))
    p["psf_beta"] = float(rng.uniform(2.8, 4.5))
    p["sky_sigma"] = float(1.0 + d * rng.uniform(0.0, 0.6))
    p["n_stars"] = int(rng.poisson(13 + 5 * d))
    p["n_bg"] = int(rng.poisson(14 + 6 * d))
    p["knot_seed"] = int(rng.integers(2**31))
    return p


# ---------------------------------------------------------------------------------------
# the central galaxy, noiseless
# ---------------------------------------------------------------------------------------
def _spiral_model(g: dict, x: np.ndarray, y: np.ndarray, rng) -> tuple[np.ndarray, list]:
    """Bulge, disk, arms and (for barred) bar in the disk plane, projected by inclination."""
    u, v = rotated(x, y, g["pa"])
    cos_i = max(np.cos(g["incl"]), 0.12)
    vd = v / cos_i  # deprojected: disk-plane coordinates (u, vd)
    r = np.sqrt(u * u + vd * vd)
    theta = np.arctan2(vd, u)
    h = g["h"]
    disk = sersic(r, 1.0, 1.678 * h) / cos_i
    # logarithmic spiral: phase m*(theta - ln(r)/tan(pitch)); arms peak where cos = 1
    phase = g["n_arms"] * (theta - np.log(np.maximum(r, 0.5) / h) / np.tan(g["pitch"]) - g["arm_phase"])
    wave = ((1.0 + np.cos(phase)) / 2.0) ** g["arm_width"]
    wave = wave / np.float32(special.gamma(g["arm_width"] + 0.5) / (np.sqrt(np.pi) * special.gamma(g["arm_width"] + 1)))
    ramp = np.clip((r - 0.6 * g["arm_start"]) / (0.6 * g["arm_start"] + 1.0), 0.0, 1.0)
    arm_amp = g["arm_amp"] * ramp
    bt, bar = g["bt"], g.get("bar_frac", 0.0)
    disk_w = 1.0 - bt - bar
    parts = [(disk_w * disk * (1.0 - arm_amp), g["disk_colour"]),
             (disk_w * disk * arm_amp * wave, g["arm_colour"])]
    bu, bv = rotated(u, vd, g.get("bar_angle", 0.0)) if bar else (None, None)
    if bar:
        parts.append((bar * ferrers(bu, bv, g["bar_len"], g["bar_q"]), g["bulge_colour"] * 0.5 + g["disk_colour"] * 0.5))
    bq = g["bulge_q"]  # bulges are nearly round spheroids: barely flattened by inclination
    rb = np.sqrt(u * u + (v / bq) ** 2)
    parts.append((bt * sersic(rb, g["bulge_n"], g["bulge_re"]) / bq, g["bulge_colour"]))
    # star-forming knots on the arms: point sources, blue
    knots = []
    for _ in range(g["n_knots"]):
        rk = h * rng.uniform(0.8, 3.0)
        arm = rng.integers(g["n_arms"])
        tk = g["arm_phase"] + 2 * np.pi * arm / g["n_arms"] + np.log(rk / h) / np.tan(g["pitch"])
        uk, vk = rk * np.cos(tk), rk * np.sin(tk) * cos_i
        ca, sa = np.cos(g["pa"]), np.sin(g["pa"])
        knots.append((ca * uk - sa * vk, sa * uk + ca * vk, g["knot_frac"] / max(g["n_knots"], 1), g["arm_colour"]))
    return parts, knots


def _edgeon_model(g: dict, x: np.ndarray, y: np.ndarray) -> list:
    """Edge-on exponential disk: (R/h) K1(R/h) along the plane, sech^2 across, dust lane."""
    u, v = rotated(x, y, g["pa"])
    h, z0 = g["h"], g["z0"]
    a = np.maximum(np.abs(u), 0.3) / h
    radial = (a * special.k1(a)).astype(np.float32)
    offset = 2.88 * z0 * np.cos(g["incl"])  # the lane sits just off the mid-plane when i < 90
    vertical = 1.0 / np.cosh(v / z0) ** 2
    disk = radial * vertical
    disk = disk / disk.sum()
    lane = np.exp(-0.5 * ((v - offset) / (0.45 * z0)) ** 2) * np.exp(-np.abs(u) / (2.5 * h))
    parts = [((1.0 - g["bt"]) * disk, g["disk_colour"], lane)]
    rb = np.sqrt(u * u + (v / g["bulge_q"]) ** 2)
    parts.append((g["bt"] * sersic(rb, g["bulge_n"], g["bulge_re"]) / g["bulge_q"], g["bulge_colour"], lane))
    return parts


def _interacting_model(g: dict, x, y, rng) -> tuple[list, list]:
    """Galaxies with lopsided light, tidal arcs (curved tails) and blue clumps."""
    parts, knots = [], []
    weights = sum(m["weight"] for m in g["members"])
    tail_total = sum(t["frac"] for t in g["tails"])
    for m in g["members"]:
        xm, ym = x - m["offset"][0], y - m["offset"][1]
        u, v = rotated(xm, ym, m["pa"])
        # lopsidedness: stretch one side (m=1 distortion)
        u = np.where(u > 0, u / (1 + g["lopsided"]), u)
        r = np.sqrt(u * u + (v / m["q"]) ** 2)
        prof = sersic(r, m["n"], m["re"])
        prof = prof / prof.sum()
        parts.append(((1 - tail_total) * m["weight"] / weights * prof, m["colour"]))
    r = np.sqrt(x * x + y * y)
    theta = np.arctan2(y, x)
    for t in g["tails"]:
        # a tidal arc: a spiral-ish ridge r = r0 * exp(growth * s), s the angle along it
        s = np.mod(t["sign"] * (theta - t["start"]), 2 * np.pi)
        ridge = t["r0"] * np.exp(t["growth"] * s)
        along = np.clip(1.0 - s / t["sweep"], 0.0, 1.0)
        arc = np.exp(-0.5 * ((r - ridge) / t["width"]) ** 2) * along
        total = float(arc.sum())
        if total > 0:
            parts.append((t["frac"] * arc / total, g["disk_colour"]))
    for _ in range(g["n_clumps"]):
        rk, tk = rng.uniform(3, 20), rng.uniform(0, 2 * np.pi)
        knots.append((rk * np.cos(tk), rk * np.sin(tk), rng.uniform(0.01, 0.04), g["clump_colour"]))
    return parts, knots


def galaxy_model(params: dict, knots: bool = True) -> np.ndarray:
    """Noiseless, unconvolved (g, r, z) flux of the central galaxy: float32 (3, 256, 256).

    Flux is in units of the sky noise (sky_sigma = 1); the r-band total is ``params['flux']``.
    Knots (HII regions, clumps) are added as single-pixel point sources when ``knots``.
    """
    g = params["components"]
    x = _XX - params["center"][0]
    y = _YY - params["center"][1]
    out = np.zeros((3, SIZE, SIZE), dtype=np.float32)
    point_sources = []
    krng = np.random.default_rng(params["knot_seed"])
    if g["kind"] == "smooth":
        u, v = rotated(x, y, g["pa"])
        r = np.sqrt(u * u + (v / g["q"]) ** 2)
        halo = g.get("halo_frac", 0.0)
        out += ((1 - halo) * sersic(r, g["n"], g["re"]) / g["q"])[None] * g["colour"][:, None, None]
        if halo:
            r2 = np.sqrt(u * u + (v / min(1.0, g["q"] * 0.9)) ** 2)
            out += (halo * sersic(r2, 1.0, 1.678 * g["halo_h"]))[None] * g["colour"][:, None, None]
    elif g["kind"] in ("barred", "tight", "loose"):
        parts, point_sources = _spiral_model(g, x, y, krng)
        for img, colour in parts:
            out += img[None] * colour[:, None, None]
    elif g["kind"] == "edgeon":
        tau = np.array([1.0, 0.75, 0.45], dtype=np.float32) * g["dust"]  # redder light gets through
        for img, colour, lane in _edgeon_model(g, x, y):
            out += img[None] * colour[:, None, None] * np.exp(-tau[:, None, None] * lane[None])
    else:
        parts, point_sources = _interacting_model(g, x, y, krng)
        for img, colour in parts:
            out += img[None] * colour[:, None, None]
    if knots:
        for kx, ky, frac, colour in point_sources:
            _add_point(out, kx + params["center"][0], ky + params["center"][1], frac * colour)
    return out * np.float32(params["flux"])


def _add_point(img: np.ndarray, x: float, y: float, flux: np.ndarray) -> None:
    """Add a point source at sub-pixel (x, y) (centred coordinates) by bilinear sharing."""
    px, py = x + (SIZE - 1) / 2.0, y + (SIZE - 1) / 2.0
    ix, iy = int(np.floor(px)), int(np.floor(py))
    fx, fy = px - ix, py - iy
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            jx, jy = ix + dx, iy + dy
            if 0 <= jx < SIZE and 0 <= jy < SIZE:
                img[:, jy, jx] += flux * np.float32(wx * wy)


# ---------------------------------------------------------------------------------------
# the field: stars and faint background galaxies
# ---------------------------------------------------------------------------------------
def _add_field(scene: np.ndarray, params: dict, rng: np.random.Generator) -> None:
    """Field stars (steep number counts, a few bright) and small faint background galaxies."""
    for _ in range(params["n_stars"]):
        x, y = rng.uniform(-SIZE / 2, SIZE / 2, 2)
        flux = 90.0 * (rng.pareto(0.9) + 1.0)  # dN/dF ~ F^-1.9: mostly faint, some saturate
        flux = min(flux, 2e5)
        t = rng.uniform(-1, 1)  # blue (hot) .. red (cool) stars
        colour = np.array([1.0 + 0.45 * -t, 1.0, 1.0 + 0.5 * t], dtype=np.float32)
        _add_point(scene, x, y, flux * np.clip(colour, 0.3, None))
    for _ in range(params["n_bg"]):
        cx, cy = rng.uniform(-SIZE / 2, SIZE / 2, 2)
        re, n, q, pa = rng.uniform(0.8, 3.5), rng.uniform(1.0, 4.0), rng.uniform(0.3, 1.0), rng.uniform(0, np.pi)
        flux = 70.0 * (rng.pareto(1.2) + 1.0)
        colour = _jitter(RED if rng.uniform() < 0.5 else BLUE, rng, 0.1)
        half = int(min(6 * re + 4, 30))
        ix, iy = int(round(cx + (SIZE - 1) / 2)), int(round(cy + (SIZE - 1) / 2))
        y0, y1, x0, x1 = max(iy - half, 0), min(iy + half + 1, SIZE), max(ix - half, 0), min(ix + half + 1, SIZE)
        if y0 >= y1 or x0 >= x1:
            continue
        sx = _XX[y0:y1, x0:x1] - cx
        sy = _YY[y0:y1, x0:x1] - cy
        u, v = rotated(sx, sy, pa)
        stamp = sersic(np.sqrt(u * u + (v / q) ** 2), n, re) / q
        scene[:, y0:y1, x0:x1] += flux * stamp[None] * colour[:, None, None]


# ---------------------------------------------------------------------------------------
# observing and display
# ---------------------------------------------------------------------------------------
def asinh_rgb(flux_grz: np.ndarray, pedestal: np.ndarray = SKY_PEDESTAL, gain: float = DISPLAY_GAIN,
              softening: float = SOFTENING) -> np.ndarray:
    """Lupton-style asinh stretch of (g, r, z) flux (3, H, W) -> uint8 RGB (H, W, 3).

    The stretch acts on the mean intensity I and scales each band by the same factor
    asinh(I/s)/(I/s), so bright cores keep their colour instead of all turning white; near
    I = 0 the factor is 1, so sky noise stays symmetric around the grey pedestal.
    """
    intensity = flux_grz.mean(axis=0)
    t = intensity / softening
    safe = np.where(np.abs(t) < 1e-4, 1.0, t)
    factor = np.where(np.abs(t) < 1e-4, 1.0, np.arcsinh(safe) / safe).astype(np.float32)
    rgb = flux_grz[::-1] * (factor * np.float32(gain))[None]  # z, r, g -> R, G, B
    rgb = np.moveaxis(rgb, 0, -1) + pedestal
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def observe(model: np.ndarray, params: dict, rng: np.random.Generator, noise: bool = True,
            field: bool = True) -> np.ndarray:
    """PSF-convolve a (3, H, W) flux scene (+ field sources) and add correlated sky/shot noise."""
    scene = model.copy()
    if field:
        _add_field(scene, params, rng)
    fwhm_px = params["psf_fwhm_arcsec"] / DECALS_PIXEL_SCALE * np.array([1.06, 1.0, 0.95])
    conv = np.fft.irfft2(np.fft.rfft2(scene) * moffat_psf_fft(fwhm_px, params["psf_beta"]), s=(SIZE, SIZE))
    conv = conv.astype(np.float32)
    if noise:
        sigma = params["sky_sigma"]
        # white noise smoothed by a ~1 px Gaussian (lag-1 correlation ~0.75, as measured on the
        # real JPEGs), rescaled so the per-pixel sky noise stays sigma; plus source shot noise
        corr = 0.95
        # most of the real noise is common to the three channels (luminance): mix in a shared field
        white = rng.standard_normal((4, SIZE, SIZE)).astype(np.float32)
        white = np.float32(np.sqrt(1 - BAND_NOISE_CORR)) * white[:3] + np.float32(np.sqrt(BAND_NOISE_CORR)) * white[3:]
        shot = np.sqrt(np.clip(conv, 0, None) / 25.0)
        smooth = np.fft.irfft2(np.fft.rfft2(white * (sigma + shot)) * _gauss_fft(corr), s=(SIZE, SIZE))
        conv = conv + (smooth * (2.0 * np.sqrt(np.pi) * corr)).astype(np.float32)
    return conv


def render_galaxy(class_id: int, rng: np.random.Generator, difficulty: float = 0.5, noise: bool = True,
                  field: bool = True) -> tuple[np.ndarray, dict]:
    """One synthetic cutout: (uint8 (256, 256, 3) RGB image, its parameter dict).

    ``noise=False`` / ``field=False`` switch off sky noise and field sources (for tests and
    figures that look at the galaxy alone).
    """
    params = draw_params(class_id, rng, difficulty)
    flux = observe(galaxy_model(params), params, rng, noise=noise, field=field)
    return asinh_rgb(flux), params


# ---------------------------------------------------------------------------------------
# the data set
# ---------------------------------------------------------------------------------------
def image_rng(seed: int, class_id: int, index: int) -> np.random.Generator:
    """The random stream of one image: depends only on (seed, class, index), not on chunking."""
    return np.random.default_rng([int(seed), int(class_id), int(index)])


def synthesize(out: str | os.PathLike, classes: Iterable[int] = (2, 5), n_per_class: int = 500, seed: int = 0,
               difficulty: float = DEFAULT_DIFFICULTY, progress: bool = True) -> Path:
    """Render a Galaxy10-layout HDF5 file of synthetic cutouts and return its path.

    Images of the classes are interleaved (2, 5, 2, 5, ...); image ``i`` of class ``c`` is a
    pure function of ``(seed, c, i, difficulty)``, so the same arguments give identical pixels.
    The file is written atomically through :class:`Galaxy10Writer`, with a ``pxscale`` column
    (0.262 arcsec/px) and attributes naming the generator version, seed and difficulty.
    """
    classes = validate_classes(classes, minimum=1, check=_check_class)
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise DataError(f"n_per_class must be a positive integer, got {n_per_class!r}")
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise DataError(f"seed must be an integer, got {seed!r}") from None
    difficulty = _check_difficulty(difficulty)
    out = Path(out)
    if out.is_dir():
        raise DataError(f"--out must be a file path, got a folder: {out}")
    jobs = [(c, i) for i in range(int(n_per_class)) for c in classes]
    attrs = {"generator": GENERATOR_VERSION, "seed": seed, "difficulty": difficulty,
             "classes": np.array(classes, dtype=np.int64), "n_per_class": int(n_per_class),
             "description": "synthetic Galaxy10-like DECaLS cutouts (galaxymorph data synth)"}
    from ..progress import progress_bar

    with Galaxy10Writer(out, attrs=attrs) as writer, \
            progress_bar(total=len(jobs), desc="synth", unit="img", disable=not progress) as bar:
        for start in range(0, len(jobs), CHUNK):
            chunk = jobs[start:start + CHUNK]
            images = np.empty((len(chunk), *IMAGE_SHAPE), dtype=np.uint8)
            for k, (c, i) in enumerate(chunk):
                images[k] = render_galaxy(c, image_rng(seed, c, i), difficulty)[0]
                bar.update(1)
            labels = np.array([c for c, _ in chunk], dtype=np.uint8)
            writer.append(images, labels, pxscale=np.full(len(chunk), DECALS_PIXEL_SCALE))
    return out
