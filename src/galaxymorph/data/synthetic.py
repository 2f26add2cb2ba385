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
   sky noise, built from named components (bulge, disk, bar, arms, companions). Tests measure
   physics on this (isophote shapes, arm Fourier power, colours).
3. **Scene**: galaxy + field stars (sub-pixel deltas) + background galaxies, convolved with
   the PSF by FFT; sky noise plus source shot noise, slightly correlated like the resampled,
   JPEG-compressed real cutouts.
4. **Stretch** (:func:`asinh_rgb`): the Lupton et al. (2004) asinh mapping of astropy's
   ``make_lupton_rgb`` (written out in float32), which keeps the colours of bright cores, with
   the grey sky pedestal of the real JPEGs.
5. **Ground truth** (:func:`component_masks`): one uint8 bit mask per image of the components
   drawn (``galaxy10.MASK_BITS``), written beside the images as the ``masks`` dataset.

Everything is float32 and vectorised over the pixel grid; the FFTs are scipy's single-precision
ones. :func:`synthesize` renders in worker processes, each image from its own random stream, so
the file does not depend on the number of workers.

The ``difficulty`` knob (0..1) moves every prior toward the ambiguous end at once: weaker,
shorter, rounder bars, fainter arms, more inclined disks, fainter and smaller galaxies,
more noise and more field sources. ``scripts/calibrate_synthetic.py`` compares the result
with real cutouts; docs/synthetic.md shows how well they match.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import scipy.fft as sfft
from scipy import special

from ..config import Config, check_class_id, check_difficulty, validate_classes
from ..errors import DataError, one_line
from ..fileio import free_space
from ..progress import progress_bar
from ..workers import WorkerPool, can_start_workers, usable_cores, worker_context
from .galaxy10 import (
    CLASS_NAMES, DECALS_PIXEL_SCALE, IMAGE_SHAPE, MASK_BITS, Galaxy10Writer,
)
from .stretch import lupton_rgb

GENERATOR_VERSION = "galaxymorph-synthetic/4"  # 4: noise drawn in the Fourier domain (same distribution)
SIZE = IMAGE_SHAPE[0]
RENDERED_CLASSES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
DEFAULT_DIFFICULTY: float = Config().difficulty  # the one default lives in Config
BAND_NOISE_CORR = 0.75  # fraction of the noise variance shared by g, r, z
NOISE_CORR_PX = 0.95    # sigma (px) of the Gaussian that correlates the sky noise like the real JPEGs'
CHUNK = 16           # images per task of a worker and per write
IMAGES_PER_WORKER = 128  # by default, one more worker per this many images (starting them costs ~0.7 s)
BAR_H = (9.0, 15.0)  # barred-spiral disk scale length, px, before the size factor (~1.8)
BAR_SB0 = (25.0, 90.0)  # barred-spiral disk central surface brightness, sky sigma per px

# Display: astropy's Lupton asinh stretch, on flux in units of the sky noise. The constants
# reproduce the look the synthetic sky was calibrated with (docs/synthetic.md): sky at grey
# ~33 with ~10 counts of noise per unit flux, a logarithmic roll-off above ~10 sky sigma.
LUPTON_Q = 3.76
LUPTON_STRETCH = 24.6
SKY_OFFSET = (3.33, 3.23, 3.18)  # flux shown above black in R, G, B: the grey sky pedestal

# Ground truth: a pixel belongs to a component where that component's light exceeds this many
# sky sigma (the galaxy footprint, stars and background galaxies measured after the PSF) ...
MASK_SIGMA = 1.0
# ... and, for the galaxy's own components, where it also gives this share of the galaxy's light.
MASK_SHARE = 0.25

# Colours as (g, r, z) flux ratios relative to r, already in display units.
RED = np.array([0.86, 1.0, 1.06], dtype=np.float32)     # old stars: bulges, ellipticals
DISK = np.array([0.95, 1.0, 1.0], dtype=np.float32)    # mixed disk light
BLUE = np.array([1.22, 1.0, 0.86], dtype=np.float32)    # young stars: arms, knots
EDGE_RED = np.array([0.92, 1.0, 1.0], dtype=np.float32)  # extra reddening of edge-ons with bulges
# Stellar colours vary mostly along one axis (bluer g-r goes with bluer r-z): jitter moves a colour
# along it, plus a little independent scatter, so no galaxy turns green.
COLOUR_AXIS = np.array([1.0, 0.0, -1.0], dtype=np.float32)

# Grids, computed once per process.
_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) - np.float32((SIZE - 1) / 2.0)
# squared distance from the PSF centre (half a pixel before pixel (0, 0)), circularly, on one quadrant
# of the grid: the PSF is evaluated there (:func:`moffat_otf`)
_R2_QUADRANT = (np.arange(SIZE // 2, dtype=np.float32) + np.float32(0.5)) ** 2
_R2_QUADRANT = _R2_QUADRANT[:, None] + _R2_QUADRANT[None, :]
_HALF_PIXEL_PHASE = np.exp(1j * np.pi * (np.arange(SIZE)[:, None] + np.arange(SIZE // 2 + 1)[None, :]) / SIZE
                           ).astype(np.complex64)
_FY = np.fft.fftfreq(SIZE).astype(np.float32)[:, None]
_FX = np.fft.rfftfreq(SIZE).astype(np.float32)[None, :]
# the correlation of resampled/JPEG noise: rfft2 of a unit-sum Gaussian, rescaled so the smoothed
# unit-variance white noise keeps unit variance per pixel
_NOISE_OTF = (np.exp(-2.0 * (np.pi * NOISE_CORR_PX) ** 2 * (_FX ** 2 + _FY ** 2))
              * np.float32(2.0 * np.sqrt(np.pi) * NOISE_CORR_PX)).astype(np.float32)
# White noise drawn straight in the Fourier domain: uniform real and imaginary parts (variance 1/12)
# scaled to the rfft2 of unit-variance white pixels (variance SIZE^2 / 2 each); column kx = 0 loses
# its imaginary parts in irfft2, so it gets sqrt(2) more. Only frequencies up to NOISE_BAND cycles/px
# along each axis are drawn: the smoothing leaves 0.6% of the variance beyond, made up by a rescale.
NOISE_BAND = 0.35
_NOISE_ROWS = int(NOISE_BAND * SIZE)  # frequencies 0..rows and -rows..-1 along y, 0..rows along x

def _noise_band_otf() -> np.ndarray:
    power = _NOISE_OTF.astype(np.float64) ** 2
    power[:, 1:-1] *= 2.0  # the other half-plane of the spectrum
    band = np.zeros(power.shape, dtype=bool)
    band[:_NOISE_ROWS + 1, :_NOISE_ROWS + 1] = band[SIZE - _NOISE_ROWS:, :_NOISE_ROWS + 1] = True
    otf = _NOISE_OTF * np.float32(SIZE * np.sqrt(6.0) * np.sqrt(power.sum() / power[band].sum()))
    otf[:, 0] *= np.float32(np.sqrt(2.0))
    return np.concatenate([otf[:_NOISE_ROWS + 1], otf[SIZE - _NOISE_ROWS:]])[:, :_NOISE_ROWS + 1]


_NOISE_OTF_BAND = _noise_band_otf()


def _fft2(a: np.ndarray) -> np.ndarray:
    return sfft.rfft2(a, workers=1)


def _ifft2(a: np.ndarray) -> np.ndarray:
    return sfft.irfft2(a, s=(SIZE, SIZE), workers=1)


# ---------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------
def sersic_b(n: float) -> float:
    """b_n such that R_e encloses half the light (Ciotti & Bertin 1999 expansion)."""
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def sersic(r: np.ndarray, n: float, re: float) -> np.ndarray:
    """Sersic surface brightness, normalised to unit total flux for a circular profile (float32)."""
    n, re = float(n), float(re)
    b = sersic_b(n)
    total = float(2.0 * np.pi * re * re * n * np.exp(b) * special.gamma(2.0 * n) / b ** (2.0 * n))
    r = np.maximum(r, np.float32(0.35))  # the centre pixel: avoid the unsampled cusp of high-n profiles
    return np.exp(-b * ((r * (1.0 / re)) ** (1.0 / n) - 1.0)) * (1.0 / total)


def rotated(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along (u) and across (v) a direction at ``angle`` radians."""
    c, s = float(np.cos(angle)), float(np.sin(angle))
    return c * x + s * y, -s * x + c * y


def ferrers(u: np.ndarray, v: np.ndarray, length: float, axis_ratio: float, index: float = 2.0) -> np.ndarray:
    """Projected Ferrers bar (1 - m^2)^index inside m < 1, normalised to unit flux."""
    m2 = (u * (1.0 / length)) ** 2 + (v * (1.0 / (length * axis_ratio))) ** 2
    prof = np.clip(1.0 - m2, 0.0, None) ** float(index)
    return prof * (1.0 / max(float(prof.sum()), 1e-12))


def moffat_otf(fwhm_px: Iterable[float], beta: float) -> np.ndarray:
    """rfft2 of unit-flux Moffat PSFs centred on pixel (0, 0), one per FWHM: (k, H, W//2+1).

    The kernels are symmetric about their centre (half a pixel before pixel (0, 0)), so their
    transform is the 2-D DCT-II of one quadrant, extended antisymmetrically past the Nyquist row
    and turned by the half-pixel shift (``_HALF_PIXEL_PHASE``): a quarter of the FFT's work.
    """
    kernels = []
    for fw in fwhm_px:
        alpha = float(fw) / (2.0 * float(np.sqrt(2.0 ** (1.0 / beta) - 1.0)))
        k = (1.0 + _R2_QUADRANT * np.float32(1.0 / alpha ** 2)) ** np.float32(-beta)
        kernels.append(k * np.float32(1.0 / (4.0 * float(k.sum()))))
    half = SIZE // 2
    cosines = sfft.dctn(np.stack(kernels), type=2, axes=(1, 2), workers=1)
    real = np.zeros((len(kernels), SIZE, half + 1), dtype=np.float32)  # frequency `half` is zero
    real[:, :half, :half] = cosines
    real[:, half + 1:, :half] = -cosines[:, :0:-1]
    return real * _HALF_PIXEL_PHASE


# ---------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------
def _check_class(class_id) -> int:
    c = check_class_id(class_id)
    if c not in RENDERED_CLASSES:
        raise DataError(f"the synthetic sky does not render class {c} ({CLASS_NAMES[c]}) yet")
    return c


def _jitter(colour: np.ndarray, rng: np.random.Generator, amount: float = 0.06) -> np.ndarray:
    """A colour moved along the stellar colour axis (mostly) and scattered a little per band."""
    along = rng.normal(0.0, amount)
    scatter = rng.normal(0.0, amount / 3.0, 3)
    return (colour * np.exp(along * COLOUR_AXIS + scatter)).astype(np.float32)


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


def _edge_on(rng, c: int, size: float, flux: float) -> dict:
    """An edge-on disk, lens-shaped: bright along its middle, tapering to points inside the frame.

    Class 8 (no bulge): a long, thin, bluish-white disk. Class 9 (bulge): a shorter, thicker,
    red disk with a round Sersic bulge that stands out above and below it.
    """
    # visible half-length (px, where the disk falls to 3 sky sigma), kept inside the frame
    length = float(rng.uniform(80.0, 118.0) if c == 8 else rng.uniform(52.0, 85.0))
    length = min(length * float(np.clip(size / 1.8, 0.8, 1.15)), 115.0)
    thin = float(rng.uniform(0.10, 0.17) if c == 8 else rng.uniform(0.11, 0.18))  # z0 / h
    n_u = float(rng.uniform(0.5, 0.8))  # Sersic-like index along the plane: < 1 gives a lens shape
    # bulgeless edge-ons are young, bluish disks; edge-ons with bulges are red (old, dusty)
    disk, bulge = (0.5 * (DISK + BLUE), RED) if c == 8 else (RED * EDGE_RED, RED * EDGE_RED ** 2)
    bt = float(rng.uniform(0.0, 0.03)) if c == 8 else float(rng.uniform(0.25, 0.45))
    # the scale h that puts 3 sky sigma at +-length: the central surface brightness of
    # exp(-(|u|/h)^(1/n_u)) sech^2(v/z0) is F / (4 Gamma(n_u + 1) z0 h)
    norm = 4.0 * thin * float(special.gamma(n_u + 1.0))
    while True:
        h = length / 5.0
        for _ in range(8):
            h = length / max(np.log(flux * (1.0 - bt) / (norm * h * h) / 3.0), 1.5) ** n_u
        if flux * (1.0 - bt) / (norm * h * h) >= 30.0 or length < 30.0:
            break
        length *= 0.9  # a faint disk shows less of its length: keep its middle bright (>= 30 sigma)
    g = {"kind": "edgeon", "h": float(h), "z0": float(thin * h), "n_u": n_u, "length": length,
         "pa": float(rng.uniform(0, np.pi)), "incl": float(np.radians(rng.uniform(85, 90))),
         "disk_colour": _jitter(disk, rng), "bulge_colour": _jitter(bulge, rng),
         "dust": float(rng.uniform(0.0, 0.8) if c == 8 else rng.uniform(0.4, 1.4)), "bt": bt}
    if c == 9:
        g["bulge_re"] = float(length * rng.uniform(0.09, 0.16))
        g["bulge_n"] = float(rng.uniform(1.5, 3.0))
        g["bulge_q"] = float(rng.uniform(0.55, 0.8))
    else:  # at most a faint nucleus
        g["bulge_re"], g["bulge_n"], g["bulge_q"] = float(2.0 * g["z0"]), 1.0, 0.8
    return g


def draw_params(class_id: int, rng: np.random.Generator, difficulty: float = DEFAULT_DIFFICULTY) -> dict:
    """Draw one galaxy and its observing conditions for a Galaxy10 class.

    Returns a plain dict: ``class_id``, ``components`` (what :func:`galaxy_model` renders),
    ``flux`` (total r-band flux in sky-sigma units), ``center`` offset (px), and the
    observation: ``psf_fwhm_arcsec``, ``psf_beta``, ``sky_sigma``, ``n_stars``, ``n_bg``.
    """
    c = _check_class(class_id)
    d = check_difficulty(difficulty)
    # size and brightness: fainter and smaller as difficulty grows
    size = float(1.8 * np.exp(rng.normal(0.0, 0.25)) * (1.0 - 0.3 * d * rng.uniform()))
    flux = float(np.exp(rng.uniform(np.log(12000), np.log(80000))) * (1.0 - 0.5 * d * rng.uniform()))
    p: dict = {"class_id": c, "difficulty": d}
    if c in (6, 7):
        flux *= 2.5 if c == 6 else 3.0  # big disks: keep their surface brightness like the real ones
    if c == 8:
        flux *= 2.6  # long disks: bright middles like the real ones (their scale follows the flux)
    if c == 9:
        flux *= 2.2
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
        gal = _edge_on(rng, c, size, flux)
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
# the central galaxy, noiseless, by component
# ---------------------------------------------------------------------------------------
# Each model returns parts (component name, unit-less 2D light, (g, r, z) colour, per-band
# attenuation or None) and point sources (x, y, fraction of the flux, colour, component name).
def _spiral_model(g: dict, x: np.ndarray, y: np.ndarray, rng) -> tuple[list, list]:
    """Bulge, disk, arms and (for barred) bar in the disk plane, projected by inclination."""
    u, v = rotated(x, y, g["pa"])
    cos_i = max(float(np.cos(g["incl"])), 0.12)
    vd = v * (1.0 / cos_i)  # deprojected: disk-plane coordinates (u, vd)
    r = np.sqrt(u * u + vd * vd)
    theta = np.arctan2(vd, u)
    h = g["h"]
    disk = sersic(r, 1.0, 1.678 * h) * (1.0 / cos_i)
    # logarithmic spiral: phase m*(theta - ln(r)/tan(pitch)); arms peak where cos = 1
    phase = g["n_arms"] * (theta - np.log(np.maximum(r, np.float32(0.5)) * (1.0 / h)) * (1.0 / float(np.tan(g["pitch"])))
                           - g["arm_phase"])
    width = g["arm_width"]
    mean_wave = float(special.gamma(width + 0.5) / (np.sqrt(np.pi) * special.gamma(width + 1)))
    wave = ((1.0 + np.cos(phase)) * 0.5) ** width * (1.0 / mean_wave)
    ramp = np.clip((r - 0.6 * g["arm_start"]) * (1.0 / (0.6 * g["arm_start"] + 1.0)), 0.0, 1.0)
    arm_amp = g["arm_amp"] * ramp
    bt, bar = g["bt"], g.get("bar_frac", 0.0)
    disk_w = disk * (1.0 - bt - bar)
    parts = [("disk", disk_w * (1.0 - arm_amp), g["disk_colour"], None),
             ("arms", disk_w * arm_amp * wave, g["arm_colour"], None)]
    if bar:
        bu, bv = rotated(u, vd, g.get("bar_angle", 0.0))
        parts.append(("bar", bar * ferrers(bu, bv, g["bar_len"], g["bar_q"]),
                      g["bulge_colour"] * 0.5 + g["disk_colour"] * 0.5, None))
    bq = g["bulge_q"]  # bulges are nearly round spheroids: barely flattened by inclination
    rb = np.sqrt(u * u + (v * (1.0 / bq)) ** 2)
    parts.append(("bulge", sersic(rb, g["bulge_n"], g["bulge_re"]) * (bt / bq), g["bulge_colour"], None))
    # star-forming knots on the arms: point sources, blue
    knots = []
    ca, sa = float(np.cos(g["pa"])), float(np.sin(g["pa"]))
    for _ in range(g["n_knots"]):
        rk = h * rng.uniform(0.8, 3.0)
        arm = rng.integers(g["n_arms"])
        tk = g["arm_phase"] + 2 * np.pi * arm / g["n_arms"] + np.log(rk / h) / np.tan(g["pitch"])
        uk, vk = rk * np.cos(tk), rk * np.sin(tk) * cos_i
        knots.append((ca * uk - sa * vk, sa * uk + ca * vk, g["knot_frac"] / max(g["n_knots"], 1), g["arm_colour"], "arms"))
    return parts, knots


def _edgeon_model(g: dict, x: np.ndarray, y: np.ndarray) -> tuple[list, list]:
    """Edge-on disk exp(-(|u|/h)^(1/n_u)) sech^2(v/z0) with a dust lane, plus a Sersic bulge."""
    u, v = rotated(x, y, g["pa"])
    h, z0 = g["h"], g["z0"]
    # along the plane a Sersic-like profile softened at the centre: bright middle, lens-shaped
    # isophotes whose ends taper to points
    radial = np.exp(-((u * u + (1.5 * z0) ** 2) * (1.0 / h ** 2)) ** (0.5 / g["n_u"]))
    e = np.exp(np.abs(v) * (-2.0 / z0))
    vertical = 4.0 * e / (1.0 + e) ** 2  # sech^2(v / z0), without overflow
    disk = radial * vertical
    disk *= 1.0 / float(disk.sum())
    offset = 2.88 * z0 * float(np.cos(g["incl"]))  # the lane sits just off the mid-plane when i < 90
    lane = np.exp(-0.5 * ((v - offset) * (1.0 / (0.45 * z0))) ** 2) * np.exp(-np.abs(u) * (1.0 / (2.5 * h)))
    rb = np.sqrt(u * u + (v * (1.0 / g["bulge_q"])) ** 2)
    bulge = sersic(rb, g["bulge_n"], g["bulge_re"]) * (g["bt"] / g["bulge_q"])
    # the lane hides the disk; only the half of the bulge behind the disk's mid-plane is dimmed
    return [("disk", (1.0 - g["bt"]) * disk, g["disk_colour"], lane),
            ("bulge", bulge, g["bulge_colour"], 0.5 * lane)], []


def _interacting_model(g: dict, x, y, rng) -> tuple[list, list]:
    """Galaxies with lopsided light, tidal arcs (curved tails) and blue clumps.

    The first member is the central galaxy (its light counts as disk for n < 2, else as bulge);
    a merging partner is a companion. Tails and clumps belong to the galaxy only.
    """
    parts, knots = [], []
    weights = sum(m["weight"] for m in g["members"])
    tail_total = sum(t["frac"] for t in g["tails"])
    for k, m in enumerate(g["members"]):
        xm, ym = x - np.float32(m["offset"][0]), y - np.float32(m["offset"][1])
        u, v = rotated(xm, ym, m["pa"])
        # lopsidedness: stretch one side (m=1 distortion)
        u = np.where(u > 0, u * (1.0 / (1 + g["lopsided"])), u)
        r = np.sqrt(u * u + (v * (1.0 / m["q"])) ** 2)
        prof = sersic(r, m["n"], m["re"])
        prof *= 1.0 / float(prof.sum())
        name = "companions" if k else ("disk" if m["n"] < 2 else "bulge")
        parts.append((name, ((1 - tail_total) * m["weight"] / weights) * prof, m["colour"], None))
    r = np.sqrt(x * x + y * y)
    theta = np.arctan2(y, x)
    for t in g["tails"]:
        # a tidal arc: a spiral-ish ridge r = r0 * exp(growth * s), s the angle along it
        s = np.mod(t["sign"] * (theta - t["start"]), 2 * np.pi)
        ridge = t["r0"] * np.exp(t["growth"] * s)
        along = np.clip(1.0 - s * (1.0 / t["sweep"]), 0.0, 1.0)
        arc = np.exp(-0.5 * ((r - ridge) * (1.0 / t["width"])) ** 2) * along
        total = float(arc.sum())
        if total > 0:
            parts.append(("tail", arc * (t["frac"] / total), g["disk_colour"], None))
    for _ in range(g["n_clumps"]):
        rk, tk = rng.uniform(3, 20), rng.uniform(0, 2 * np.pi)
        knots.append((rk * np.cos(tk), rk * np.sin(tk), rng.uniform(0.01, 0.04), g["clump_colour"], "tail"))
    return parts, knots


def _smooth_model(g: dict, x, y) -> tuple[list, list]:
    """A Sersic spheroid (the 'bulge' of the masks), sometimes with a faint outer disk."""
    u, v = rotated(x, y, g["pa"])
    r = np.sqrt(u * u + (v * (1.0 / g["q"])) ** 2)
    halo = g.get("halo_frac", 0.0)
    parts = [("bulge", sersic(r, g["n"], g["re"]) * ((1 - halo) / g["q"]), g["colour"], None)]
    if halo:
        r2 = np.sqrt(u * u + (v * (1.0 / min(1.0, g["q"] * 0.9))) ** 2)
        parts.append(("disk", sersic(r2, 1.0, 1.678 * g["halo_h"]) * halo, g["colour"], None))
    return parts, []


def galaxy_components(params: dict, knots: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The central galaxy's noiseless, unconvolved light: ((g, r, z) flux (3, 256, 256), components).

    ``components`` maps each drawn component (``bulge``, ``disk``, ``bar``, ``arms``,
    ``companions``, ``tail``) to its light averaged over the bands, (256, 256), in the same
    sky-sigma units. Knots (HII regions, clumps) are single-pixel point sources when ``knots``.
    """
    g = params["components"]
    x = _XX - np.float32(params["center"][0])
    y = _YY - np.float32(params["center"][1])
    krng = np.random.default_rng(params["knot_seed"])
    if g["kind"] == "smooth":
        parts, point_sources = _smooth_model(g, x, y)
    elif g["kind"] in ("barred", "tight", "loose"):
        parts, point_sources = _spiral_model(g, x, y, krng)
    elif g["kind"] == "edgeon":
        parts, point_sources = _edgeon_model(g, x, y)
    else:
        parts, point_sources = _interacting_model(g, x, y, krng)
    flux = np.float32(params["flux"])
    out = np.zeros((3, SIZE, SIZE), dtype=np.float32)
    comps: dict[str, np.ndarray] = {}
    dust = np.array([1.0, 0.75, 0.45], dtype=np.float32) * np.float32(g.get("dust", 0.0))  # red light gets through
    scratch = np.empty((SIZE, SIZE), dtype=np.float32)
    for name, light, colour, lane in parts:
        weights = colour * flux  # (g, r, z) flux per unit of the part's light
        if lane is None:
            for b in range(3):
                out[b] += np.multiply(light, weights[b], out=scratch)
            mean = light * np.float32(weights.mean())
        else:
            mean = np.zeros((SIZE, SIZE), dtype=np.float32)
            for b in range(3):
                band = np.multiply(lane, -dust[b], out=scratch)
                band = np.exp(band, out=band)
                band *= light
                band *= weights[b]
                out[b] += band
                mean += band
            mean *= np.float32(1.0 / 3.0)
        if name in comps:
            comps[name] += mean
        else:
            comps[name] = mean
    if knots and point_sources:
        xs = np.array([k[0] for k in point_sources]) + params["center"][0]
        ys = np.array([k[1] for k in point_sources]) + params["center"][1]
        fl = np.stack([k[2] * k[3] for k in point_sources]) * float(flux)
        _add_points(out, xs, ys, fl)
        for name in {k[4] for k in point_sources}:
            sel = [i for i, k in enumerate(point_sources) if k[4] == name]
            plane = comps.setdefault(name, np.zeros((SIZE, SIZE), dtype=np.float32))
            _add_points(plane[None], xs[sel], ys[sel], fl[sel].mean(axis=1, keepdims=True))
    return out, comps


def galaxy_model(params: dict, knots: bool = True) -> np.ndarray:
    """Noiseless, unconvolved (g, r, z) flux of the central galaxy: float32 (3, 256, 256).

    Flux is in units of the sky noise (sky_sigma = 1); the r-band total is about ``params['flux']``.
    """
    return galaxy_components(params, knots)[0]


def _add_points(img: np.ndarray, x: np.ndarray, y: np.ndarray, flux: np.ndarray) -> None:
    """Add point sources at sub-pixel (x, y) (centred coordinates) by bilinear sharing.

    ``img`` is (k, H, W); ``flux`` is (n, k): each source's flux in each plane.
    """
    px, py = np.asarray(x, float) + (SIZE - 1) / 2.0, np.asarray(y, float) + (SIZE - 1) / 2.0
    ix, iy = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
    fx, fy = px - ix, py - iy
    flat = img.reshape(img.shape[0], -1)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            jx, jy = ix + dx, iy + dy
            ok = (jx >= 0) & (jx < SIZE) & (jy >= 0) & (jy < SIZE)
            for k in range(flat.shape[0]):
                np.add.at(flat[k], (jy * SIZE + jx)[ok], (flux[:, k] * wx * wy)[ok].astype(np.float32))


# ---------------------------------------------------------------------------------------
# the field: stars and faint background galaxies
# ---------------------------------------------------------------------------------------
def _field(params: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Field stars (steep number counts, a few bright) and small faint background galaxies:
    their unconvolved (g, r, z) light together, (3, 256, 256), and the band-mean light of the
    stars and of the galaxies apart (for the masks), each (256, 256)."""
    light = np.zeros((3, SIZE, SIZE), dtype=np.float32)
    stars = np.zeros((SIZE, SIZE), dtype=np.float32)
    n = params["n_stars"]
    if n:
        xy = rng.uniform(-SIZE / 2, SIZE / 2, (n, 2))
        flux = np.minimum(90.0 * (rng.pareto(0.9, n) + 1.0), 2e5)  # dN/dF ~ F^-1.9: mostly faint, some saturate
        t = rng.uniform(-1, 1, n)  # blue (hot) .. red (cool) stars
        colour = np.clip(np.stack([1.0 - 0.45 * t, np.ones(n), 1.0 + 0.5 * t], axis=1), 0.3, None)
        band_flux = flux[:, None] * colour
        _add_points(light, xy[:, 0], xy[:, 1], band_flux)
        _add_points(stars[None], xy[:, 0], xy[:, 1], band_flux.mean(axis=1, keepdims=True))
    galaxies = np.zeros((SIZE, SIZE), dtype=np.float32)
    for _ in range(params["n_bg"]):
        cx, cy = rng.uniform(-SIZE / 2, SIZE / 2, 2)
        re, n_s, q, pa = rng.uniform(0.8, 3.5), rng.uniform(1.0, 4.0), rng.uniform(0.3, 1.0), rng.uniform(0, np.pi)
        flux = 70.0 * (rng.pareto(1.2) + 1.0)
        colour = _jitter(RED if rng.uniform() < 0.5 else BLUE, rng, 0.1)
        half = int(min(6 * re + 4, 30))
        ix, iy = int(round(cx + (SIZE - 1) / 2)), int(round(cy + (SIZE - 1) / 2))
        y0, y1, x0, x1 = max(iy - half, 0), min(iy + half + 1, SIZE), max(ix - half, 0), min(ix + half + 1, SIZE)
        if y0 >= y1 or x0 >= x1:
            continue
        u, v = rotated(_XX[y0:y1, x0:x1] - np.float32(cx), _YY[y0:y1, x0:x1] - np.float32(cy), pa)
        stamp = sersic(np.sqrt(u * u + (v * (1.0 / q)) ** 2), n_s, re) * float(flux / q)
        light[:, y0:y1, x0:x1] += stamp[None] * colour[:, None, None]
        galaxies[y0:y1, x0:x1] += stamp * float(colour.mean())
    return light, stars, galaxies


# ---------------------------------------------------------------------------------------
# observing and display
# ---------------------------------------------------------------------------------------
def asinh_rgb(flux_grz: np.ndarray) -> np.ndarray:
    """(g, r, z) flux (3, H, W) in sky-sigma units -> uint8 RGB (H, W, 3), z, r, g -> R, G, B,
    with the project's one Lupton asinh stretch (:func:`~galaxymorph.data.stretch.lupton_rgb`)
    and the grey sky pedestal of the real cutouts (``SKY_OFFSET``)."""
    return lupton_rgb(flux_grz[::-1], SKY_OFFSET, LUPTON_Q, LUPTON_STRETCH)


def _psf_fwhm_px(params: dict) -> np.ndarray:
    """Seeing FWHM in px for g, r, z: slightly broader in g than in z."""
    return params["psf_fwhm_arcsec"] / DECALS_PIXEL_SCALE * np.array([1.06, 1.0, 0.95])


def observe(model: np.ndarray, params: dict, rng: np.random.Generator, noise: bool = True,
            field: bool = True) -> np.ndarray:
    """PSF-convolve a (3, H, W) flux scene (+ field sources) and add correlated sky/shot noise."""
    return _observe(model, params, rng, noise, field)[0]


def _sky_noise(rng: np.random.Generator) -> np.ndarray:
    """Unit-variance (3, H, W) float32 noise, correlated like the real cutouts' resampled JPEG noise.

    White noise smoothed by a ~1 px Gaussian (lag-1 correlation ~0.75, as measured on the real
    JPEGs), most of it common to the three bands (luminance, as in the real cutouts). It is drawn
    in the Fourier domain, so the smoothing and the band mixing cost one inverse FFT per band and
    no forward one; uniform deviates there (6x cheaper than normal ones) give Gaussian pixels,
    each being a sum over every frequency.
    """
    rows = _NOISE_ROWS
    uniform = rng.random((4, 2 * rows + 1, rows + 1, 2), dtype=np.float32)
    uniform -= np.float32(0.5)
    white = uniform.view(np.complex64)[..., 0]
    band = white[:3] * np.float32(np.sqrt(1 - BAND_NOISE_CORR))
    band += white[3:] * np.float32(np.sqrt(BAND_NOISE_CORR))
    band *= _NOISE_OTF_BAND
    spectrum = np.zeros((3, SIZE, SIZE // 2 + 1), dtype=np.complex64)
    spectrum[:, :rows + 1, :rows + 1] = band[:, :rows + 1]
    spectrum[:, SIZE - rows:, :rows + 1] = band[:, rows + 1:]
    return _ifft2(spectrum)


def _shot_sigma(flux: np.ndarray) -> np.ndarray:
    """Source shot noise sigma, sky-sigma units: varies on the scale of the PSF (slower than the
    noise correlation)."""
    shot = np.clip(flux, 0, None)
    shot *= np.float32(1 / 25.0)
    return np.sqrt(shot, out=shot)


def _observe(model: np.ndarray, params: dict, rng, noise: bool, field: bool):
    """:func:`observe`, also returning the PSF's transfer functions, the band-mean unconvolved light
    of the field stars and galaxies, and the scene's spectrum averaged over the bands (which
    :func:`component_masks` reuses)."""
    otf = moffat_otf(_psf_fwhm_px(params), params["psf_beta"])
    scene = model
    stars = galaxies = None
    if field:
        light, stars, galaxies = _field(params, rng)
        scene = model + light
    spectrum = _fft2(scene)
    conv = _ifft2(spectrum * otf)
    if noise:
        conv += _sky_noise(rng) * (np.float32(params["sky_sigma"]) + _shot_sigma(conv))
    return conv, otf, stars, galaxies, spectrum.mean(axis=0)


def component_masks(comps: dict[str, np.ndarray], params: dict, otf: np.ndarray,
                    stars: np.ndarray | None = None, galaxies: np.ndarray | None = None,
                    scene_spectrum: np.ndarray | None = None) -> np.ndarray:
    """uint8 (256, 256) bit mask of what was drawn where (bits: ``galaxy10.MASK_BITS``).

    * ``galaxy``: the footprint, where the central galaxy's PSF-convolved light (mean of the
      bands) exceeds ``MASK_SIGMA`` x the sky noise.
    * ``bulge``, ``disk``, ``bar``, ``arms``: inside the footprint, where the component's own
      (unconvolved) light exceeds ``MASK_SIGMA`` sky sigma and is at least ``MASK_SHARE`` of the
      galaxy's light there. Round/in-between/cigar galaxies are one spheroid (``bulge``).
    * ``stars``, ``companions``: where PSF-convolved field stars, or background galaxies, exceed
      ``MASK_SIGMA`` sky sigma; ``companions`` also marks a merging partner (class 1), which is
      inside the footprint as well. ``stars`` and ``galaxies`` are their band-mean light, (256, 256).

    ``scene_spectrum``, the rfft2 of galaxy + field averaged over the bands, saves the galaxy's
    own transform: it is the scene's less the field's.
    """
    level = np.float32(MASK_SIGMA * params["sky_sigma"])
    total = sum(comps.values())
    field = [p for p in (stars, galaxies) if p is not None]
    if scene_spectrum is None:
        spectra = _fft2(np.stack([total] + field))
    else:
        spectra = np.empty((1 + len(field), *scene_spectrum.shape), dtype=scene_spectrum.dtype)
        spectra[0] = scene_spectrum
        if field:
            spectra[1:] = _fft2(np.stack(field))
            spectra[0] -= spectra[1:].sum(axis=0)
    conv = _ifft2(spectra * otf[1:2])
    footprint = conv[0] > level
    mask = footprint.view(np.uint8) * np.uint8(MASK_BITS["galaxy"])
    share = np.float32(MASK_SHARE) * total
    np.maximum(share, np.nextafter(level, np.float32(np.inf)), out=share)  # light > level and >= share, at once
    for name, light in comps.items():
        if name in MASK_BITS:
            mask |= (footprint & (light >= share)).view(np.uint8) * np.uint8(MASK_BITS[name])
    if stars is not None:
        mask |= (conv[1] > level).view(np.uint8) * np.uint8(MASK_BITS["stars"])
        mask |= (conv[2] > level).view(np.uint8) * np.uint8(MASK_BITS["companions"])
    return mask


def render(class_id: int, rng: np.random.Generator, difficulty: float = DEFAULT_DIFFICULTY,
           noise: bool = True, field: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """One synthetic cutout with its ground truth: (uint8 RGB (256, 256, 3), uint8 mask (256, 256), params)."""
    params = draw_params(class_id, rng, difficulty)
    model, comps = galaxy_components(params)
    flux, otf, stars, galaxies, spectrum = _observe(model, params, rng, noise, field)
    return asinh_rgb(flux), component_masks(comps, params, otf, stars, galaxies, spectrum), params


def render_galaxy(class_id: int, rng: np.random.Generator, difficulty: float = DEFAULT_DIFFICULTY, noise: bool = True,
                  field: bool = True) -> tuple[np.ndarray, dict]:
    """One synthetic cutout: (uint8 (256, 256, 3) RGB image, its parameter dict).

    ``noise=False`` / ``field=False`` switch off sky noise and field sources (for tests and
    figures that look at the galaxy alone). :func:`render` also returns the component masks.
    """
    image, _, params = render(class_id, rng, difficulty, noise, field)
    return image, params


# ---------------------------------------------------------------------------------------
# the data set
# ---------------------------------------------------------------------------------------
def image_rng(seed: int, class_id: int, index: int) -> np.random.Generator:
    """The random stream of one image: depends only on (seed, class, index), not on chunking."""
    return np.random.default_rng([int(seed), int(class_id), int(index)])


def render_chunk(jobs: list[tuple[int, int]], seed: int, difficulty: float) -> tuple[np.ndarray, np.ndarray]:
    """Images and masks of ``(class, index)`` jobs: ((n, 256, 256, 3), (n, 256, 256)) uint8.

    A module-level function of plain arguments, so worker processes (spawn or forkserver) can run it.
    """
    images = np.empty((len(jobs), *IMAGE_SHAPE), dtype=np.uint8)
    masks = np.empty((len(jobs), SIZE, SIZE), dtype=np.uint8)
    for k, (c, i) in enumerate(jobs):
        images[k], masks[k], _ = render(c, image_rng(seed, c, i), difficulty)
    return images, masks


def _rendered_chunks(chunks: list[list[tuple[int, int]]], seed: int, difficulty: float,
                     workers: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield the rendered chunks in order, from ``workers`` processes (in this one when 1).

    At most two chunks per worker are in flight, so memory stays small whatever the sky's size.
    """
    if workers <= 1 or len(chunks) <= 1 or not can_start_workers():
        for chunk in chunks:
            yield render_chunk(chunk, seed, difficulty)
        return
    # workers fork from a server that has imported the heavy libraries once. Not this module:
    # the server may not see the parent's sys.path (Python 3.11's forkserver ignores it), and
    # the workers must run this very file. No astropy: the stretch is written out here
    context = worker_context(["numpy", "scipy.fft", "scipy.special", "h5py"])
    with WorkerPool(max_workers=workers, mp_context=context) as pool:
        pending = []
        try:
            for chunk in chunks:
                pending.append(pool.submit(render_chunk, chunk, seed, difficulty))
                if len(pending) >= 2 * workers:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for future in pending:
                future.cancel()


def synthesize(out: str | os.PathLike, classes: Iterable[int] | None = None, n_per_class: int | None = None,
               seed: int | None = None, difficulty: float | None = None, progress: bool = True,
               workers: int | None = None) -> Path:
    """Render a Galaxy10-layout HDF5 file of synthetic cutouts and return its path.

    Defaults (classes, images per class, seed, difficulty) are :class:`~galaxymorph.Config`'s.
    Images of the classes are interleaved (2, 5, 2, 5, ...); image ``i`` of class ``c`` is a
    pure function of ``(seed, c, i, difficulty)``, so the same arguments give identical pixels
    whatever the number of ``workers`` (processes; default: every core, one per 128 images at
    most, since starting the workers takes ~0.7 s). The file is written
    atomically through :class:`Galaxy10Writer`, with a ``pxscale`` column (0.262 arcsec/px),
    the component ``masks`` and attributes naming the generator version, seed and difficulty.
    A bad argument is a one-line :class:`DataError` that names the ``data synth`` option
    (``--n-per-class`` for ``n_per_class``), as :class:`~galaxymorph.Config`'s errors do.
    """
    defaults = Config()
    classes = validate_classes(defaults.classes if classes is None else classes, minimum=1, check=_check_class)
    n_per_class = defaults.n_per_class if n_per_class is None else n_per_class
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise DataError(f"--n-per-class must be a positive integer, got {n_per_class!r}")
    try:
        seed = int(defaults.seed if seed is None else seed)
    except (TypeError, ValueError):
        raise DataError(f"--seed must be an integer, got {seed!r}") from None
    difficulty = check_difficulty(defaults.difficulty if difficulty is None else difficulty)
    n_images = len(classes) * int(n_per_class)
    if workers is None:  # every core, but no process that would cost more to start than it renders
        workers = max(1, min(usable_cores(), n_images // IMAGES_PER_WORKER))
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise DataError(f"--workers must be a positive integer, got {workers!r}")
    out = Path(out)
    if out.is_dir():
        raise DataError(f"--out must be a file path, got a folder: {out}")
    jobs = [(c, i) for i in range(int(n_per_class)) for c in classes]
    chunks = [jobs[start:start + CHUNK] for start in range(0, len(jobs), CHUNK)]
    attrs = {"generator": GENERATOR_VERSION, "seed": seed, "difficulty": difficulty,
             "classes": np.array(classes, dtype=np.int64), "n_per_class": int(n_per_class),
             "description": "synthetic Galaxy10-like DECaLS cutouts (galaxymorph data synth)"}
    try:
        with Galaxy10Writer(out, attrs=attrs) as writer, \
                progress_bar(total=len(jobs), desc="synth", unit="img", disable=not progress) as bar:
            for chunk, (images, masks) in zip(chunks, _rendered_chunks(chunks, seed, difficulty, int(workers))):
                _check_free_space(out, images.nbytes + masks.nbytes)
                labels = np.array([c for c, _ in chunk], dtype=np.uint8)
                writer.append(images, labels, pxscale=np.full(len(chunk), DECALS_PIXEL_SCALE))
                writer.append_masks(masks)
                bar.update(len(chunk))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
            raise DataError(_disk_full(out)) from None
        raise DataError(f"cannot write {out}: {one_line(exc)}") from None
    return out


def _disk_full(out: Path) -> str:
    return f"disk full while writing {out}: nothing was written; free some space and retry"


def _check_free_space(out: Path, nbytes: int) -> None:
    """Refuse to write a batch that might not fit: HDF5 cannot recover from a full disk (it
    reports the failed writes late, and may crash the process at exit)."""
    margin = 1 << 20  # metadata, and a batch that compresses worse than it should
    if free_space(out) < nbytes + margin:
        raise DataError(_disk_full(out))
