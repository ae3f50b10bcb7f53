"""The device model of an RF spintronic network, in one place (see docs/physics.md).

Everything that evaluates a resonator response, a detuning, a chain sign or an input frequency plan calls
this module; nothing else in rfexplorer writes these equations again.

Units: frequencies in GHz, powers in µW, voltages in the normalised units of the published simulator
(K_SD in V/µW there). Frequency *positions* used for training are expressed in "comb units": u = i is the
frequency of input oscillator i, so one unit is one input spacing whatever the plan or the band.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any, NamedTuple, Optional

import torch

from engine.core.enums import FrequencyPlan, HardwareRegime, Parity, set_mode, values

#: Spin-diode sensitivity of the published simulator: tan(pi/4) / (8 sqrt 2) / I_th with I_th = 10 µA.
K_SD_PUBLISHED = math.tan(math.pi / 4) / (8 * math.sqrt(2)) / 10.0
FREQUENCY_PLANS = values(FrequencyPlan)
PARITIES = values(Parity)
#: Training regimes of a network with device spreads and noise (RunConfig.hardware, see docs/physics.md):
#: 'ideal' trains the nominal device and deploys to a chip it never saw, 'aware' draws a fresh chip and noise
#: at every batch, 'in-situ' trains on the one chip it is evaluated on (offsets known only through the forward).
HARDWARE_REGIMES = values(HardwareRegime)


def _plain_dict(items: list[tuple[str, object]]) -> dict:
    """A dict of dataclass fields for asdict, modes (engine.core.enums) as their plain strings."""
    return {name: value.value if isinstance(value, Enum) else value for name, value in items}


#: Most set-point bits a device may have (2^24 levels is already far below float32 resolution of a position).
MAX_TUNING_BITS = 24


@dataclass(frozen=True)
class STNOParams:
    """A hidden neuron of a multilayer network: a spin-torque nano-oscillator (STNO) driven by its chain.

    The chain voltage V (plus a per-chain bias) becomes a DC current I = g_m (V + V_bias), clamped to
    [I_th, clamp_ratio * I_th]; the STNO then emits P = A (xi - 1) / (xi + Q) R I^2 with xi = I / I_th, at its
    own frequency, into the next layer's chains (Ross, Leroux et al., Nature Nanotechnology 18, 1273 (2023)).
    """

    g_m: float = 3.39
    """Voltage-to-current conversion of the chain's read-out (µA per mV): I = g_m (V + V_bias)."""
    v_bias: float = 0.011
    """Voltage bias added to every hidden chain before conversion (V, normalised units)."""
    i_th_ua: float = 10.0
    """Threshold current of auto-oscillation (µA): below it the STNO does not emit."""
    clamp_ratio: float = 4.0
    """The current is clamped at this multiple of I_th to protect the oscillator (dimensionless)."""
    q: float = 2.0
    """Non-linear damping coefficient Q of the oscillator (dimensionless)."""
    r_ohm: float = 1000.0
    """Resistance of the oscillator (Ohm)."""
    amplification: float = 1.25
    """Power amplification A after the oscillator (dimensionless); 1.25 makes the largest power 1 µW."""
    train_gain: bool = True
    """Whether each hidden layer's g_m is trained (a tunable read-out amplifier) or kept at ``g_m``."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("g_m", "i_th_ua", "r_ohm", "amplification"):
            if not getattr(self, name) > 0:
                problems.append(f"device.stno.{name} must be > 0 (got {getattr(self, name)})")
        if not self.clamp_ratio > 1:
            problems.append(f"device.stno.clamp_ratio must be > 1 (got {self.clamp_ratio})")
        if self.q < 0:
            problems.append(f"device.stno.q must be >= 0 (got {self.q})")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def max_power_uw(self) -> float:
        """The largest power the STNO emits (µW), at the clamp current."""
        xi = self.clamp_ratio
        return self.amplification * (xi - 1.0) / (xi + self.q) * self.r_ohm * (xi * self.i_th_ua) ** 2 * 1e-6


@dataclass(frozen=True)
class DeviceParams:
    """Physical parameters of the RF network. Spreads named ``*_dtod`` are device-to-device, relative (std/mean)."""

    # Field metadata describes the app's Device and Hardware tabs (rfexplorer.device_controls), nothing else: the
    # tab, a short label, the unit a control shows ("%": a fraction shown in percent, "°": radians shown in
    # degrees), its range and step in that unit, the choices of a text field, the text standing for None, and
    # the words of a non-default value in the Hardware tab's summary. The docstrings below are the tooltips.
    alpha: float = field(
        default=0.005,
        metadata={
            "tab": "device",
            "label": "Damping α",
            "unit": "",
            "min": 0.0001,
            "max": 0.5,
            "step": 0.0005,
            "decimals": 4,
        },
    )
    """Gilbert damping (dimensionless): a resonator's linewidth is alpha * f_r."""
    k_sd: float = K_SD_PUBLISHED
    """Spin-diode sensitivity K_SD (V per µW, normalised units): peak rectified voltage per unit power."""
    phi: float = field(
        default=0.0,
        metadata={
            "tab": "device",
            "label": "Phase φ",
            "unit": "°",
            "min": -180.0,
            "max": 180.0,
            "step": 5.0,
            "decimals": 1,
        },
    )
    """Lineshape phase (rad): 0 = purely antisymmetric Lorentzian, pi/2 = purely symmetric."""
    parity: Parity = Parity.EVEN
    """Series-connection sign convention of a chain: 'even' gives s_k = (-1)^k, 'odd' gives (-1)^(k+1)."""
    p_max_uw: float = 1.0
    """Power emitted by an input oscillator for a pixel of value 1 (µW); P_i = p_max_uw * x_i."""
    f_min_ghz: float = field(
        default=1.0,
        metadata={
            "tab": "device",
            "label": "f min",
            "unit": "GHz",
            "min": 0.01,
            "max": 500.0,
            "step": 0.5,
            "decimals": 2,
        },
    )
    """Frequency of the first input oscillator (GHz)."""
    f_max_ghz: float = field(
        default=18.0,
        metadata={
            "tab": "device",
            "label": "f max",
            "unit": "GHz",
            "min": 0.02,
            "max": 1000.0,
            "step": 0.5,
            "decimals": 2,
        },
    )
    """Frequency of the last input oscillator (GHz)."""
    plan: FrequencyPlan = field(
        default=FrequencyPlan.GEOMETRIC, metadata={"tab": "device", "label": "Plan", "choices": FREQUENCY_PLANS}
    )
    """Input frequency plan: 'geometric' (constant spacing in linewidths) or 'linear' (constant spacing in GHz)."""
    tuning_margin: float = 2.0
    """How far resonances (and trained inputs) may be tuned beyond the input band, in input spacings."""
    alpha_dtod: float = 0.0
    """Device-to-device spread of the resonators' damping (relative std), frozen at fabrication."""
    k_sd_dtod: float = 0.0
    """Device-to-device spread of the resonators' sensitivity K_SD (relative std), frozen at fabrication."""
    readout_noise_v: float = 0.0
    """Std of additive noise on each chain voltage at every read-out (V, normalised units); 0 = ideal."""
    tuning_range: float | None = field(
        default=None,
        metadata={
            "tab": "hardware",
            "label": "Range ±",
            "unit": "%",
            "min": 0.01,
            "max": 100.0,
            "step": 1.0,
            "decimals": 2,
            "none": "unlimited",
            "summary": "range ±{} %",
        },
    )
    """Relative half-width of each device's tuning range around its fabricated frequency f_fab
    (|f - f_fab| <= tuning_range * f_fab, within the band plus tuning_margin); None = unlimited."""
    tuning_bits: int | None = field(
        default=None,
        metadata={
            "tab": "hardware",
            "label": "Bits",
            "unit": "",
            "min": 1,
            "max": MAX_TUNING_BITS,
            "step": 1,
            "decimals": 0,
            "none": "continuous",
            "summary": "{} bits",
        },
    )
    """Set-point resolution (bits): 2^bits levels, evenly spaced in comb units, across each device's tuning
    range (the band plus tuning_margin when unlimited); None = continuous."""
    freq_spread: float = field(
        default=0.0,
        metadata={
            "tab": "hardware",
            "label": "Spread",
            "unit": "%",
            "min": 0.0,
            "max": 50.0,
            "step": 0.1,
            "decimals": 3,
            "summary": "spread {} %",
        },
    )
    """Fabrication spread of each device's true frequency around its set-point (relative std), drawn once
    per chip."""
    calibrated: bool = field(
        default=True, metadata={"tab": "hardware", "label": "calibrated", "summary": "not calibrated"}
    )
    """Whether each device's frequency offset is measured and trimmed (only the quantisation residual
    remains) rather than acting in full."""
    freq_jitter_lw: float = field(
        default=0.0,
        metadata={
            "tab": "hardware",
            "label": "Jitter",
            "unit": "lw",
            "min": 0.0,
            "max": 10.0,
            "step": 0.05,
            "decimals": 3,
            "summary": "jitter {} lw",
        },
    )
    """Cycle-to-cycle noise of each device's frequency at every read-out (std, in the device's own
    linewidths alpha * f)."""
    power_noise: float = field(
        default=0.0,
        metadata={
            "tab": "hardware",
            "label": "Power noise",
            "unit": "%",
            "min": 0.0,
            "max": 100.0,
            "step": 0.5,
            "decimals": 2,
            "summary": "power noise {} %",
        },
    )
    """Cycle-to-cycle noise of each input power at every read-out (relative std)."""
    stno: STNOParams = field(default_factory=STNOParams)
    """The spin-torque nano-oscillators of the hidden layers (multilayer networks only)."""

    def __post_init__(self) -> None:
        problems = []
        if not self.alpha > 0:
            problems.append(f"damping alpha must be > 0 (got {self.alpha})")
        if not self.k_sd > 0:
            problems.append(f"K_SD must be > 0 (got {self.k_sd})")
        if not self.p_max_uw > 0:
            problems.append(f"input power p_max_uw must be > 0 (got {self.p_max_uw})")
        if not 0 < self.f_min_ghz < self.f_max_ghz:
            problems.append(f"need 0 < f_min_ghz < f_max_ghz (got {self.f_min_ghz}, {self.f_max_ghz})")
        if not set_mode(self, "plan", FrequencyPlan):
            problems.append(f"frequency plan must be one of {FREQUENCY_PLANS} (got {self.plan!r})")
        if not set_mode(self, "parity", Parity):
            problems.append(f"parity must be one of {PARITIES} (got {self.parity!r})")
        if self.tuning_margin < 0:
            problems.append(f"tuning_margin must be >= 0 (got {self.tuning_margin})")
        for name in ("alpha_dtod", "k_sd_dtod", "readout_noise_v", "freq_spread", "freq_jitter_lw", "power_noise"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must be >= 0 (got {getattr(self, name)})")
        if self.tuning_range is not None and not 0 < self.tuning_range <= 1:
            problems.append(f"tuning_range must be in (0, 1] or None (got {self.tuning_range})")
        bits = self.tuning_bits
        if isinstance(bits, float) and bits.is_integer():  # a JSON file may store 6 as 6.0
            bits = int(bits)
            object.__setattr__(self, "tuning_bits", bits)
        if bits is not None and (
            isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_TUNING_BITS
        ):
            problems.append(f"tuning_bits must be a whole number from 1 to {MAX_TUNING_BITS} or None (got {bits})")
        if not isinstance(self.calibrated, bool):
            problems.append(f"calibrated must be true or false (got {self.calibrated!r})")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict:
        """The nested dict of the settings, modes as plain strings."""
        return asdict(self, dict_factory=_plain_dict)

    @property
    def tuned_hardware(self) -> bool:
        """Whether set-points pass through the hardware model (quantisation, fabrication offsets)."""
        return self.tuning_bits is not None or self.freq_spread > 0

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceParams":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown device parameter(s): {', '.join(sorted(unknown))}")
        d = dict(d)
        if isinstance(d.get("stno"), dict):
            stno_known = {f.name for f in fields(STNOParams)}
            bad = set(d["stno"]) - stno_known
            if bad:
                raise ValueError(f"unknown STNO parameter(s): {', '.join(sorted(bad))}")
            d["stno"] = STNOParams(**d["stno"])
        return cls(**d)

    def with_(self, **changes) -> "DeviceParams":
        return replace(self, **changes)


class Chip(NamedTuple):
    """One chip's frozen device-to-device draws (engine.layers.chain.RFChainLayer.draw_chip and own_chip), each
    None when its spread is 0 (the nominal device)."""

    alpha: Optional[torch.Tensor]
    """Damping of each resonator (C, K)."""
    k_sd: Optional[torch.Tensor]
    """Sensitivity K_SD of each resonator (C, K)."""
    freq_eps_r: Optional[torch.Tensor]
    """Standard-normal fabrication draws of the resonators' frequencies (C, K), see spread_factor."""
    freq_eps_in: Optional[torch.Tensor]
    """Standard-normal fabrication draws of the input oscillators' frequencies (N,)."""


#: The nominal chip: no spreads.
NOMINAL_CHIP = Chip(None, None, None, None)


# ---------------------------------------------------------------------------------------------------------
# Frequency plan: comb units <-> GHz
# ---------------------------------------------------------------------------------------------------------


def comb_ratio(params: DeviceParams, n_inputs: int) -> float:
    """Geometric plan: ratio r between neighbouring input frequencies."""
    return (params.f_max_ghz / params.f_min_ghz) ** (1.0 / max(n_inputs - 1, 1))


def comb_spacing_ghz(params: DeviceParams, n_inputs: int) -> float:
    """Linear plan: spacing between neighbouring input frequencies (GHz)."""
    return (params.f_max_ghz - params.f_min_ghz) / max(n_inputs - 1, 1)


def comb_to_ghz(u: torch.Tensor, params: DeviceParams, n_inputs: int) -> torch.Tensor:
    """Frequency (GHz) at comb position u (u = i is input oscillator i's nominal frequency)."""
    if params.plan == FrequencyPlan.GEOMETRIC:
        return params.f_min_ghz * torch.exp(u * math.log(comb_ratio(params, n_inputs)))
    return params.f_min_ghz + u * comb_spacing_ghz(params, n_inputs)


def comb_slope_ghz(f: Any, params: DeviceParams, n_inputs: int) -> Any:
    """d f / d u (GHz per comb unit) at the frequencies f = comb_to_ghz(u) (a tensor or a numpy array): f ln r on
    the geometric plan, the spacing on the linear one (for code that differentiates :func:`comb_to_ghz` by hand)."""
    if params.plan == FrequencyPlan.GEOMETRIC:
        return f * math.log(comb_ratio(params, n_inputs))
    return f * 0.0 + comb_spacing_ghz(params, n_inputs)


def ghz_to_comb(f: torch.Tensor, params: DeviceParams, n_inputs: int) -> torch.Tensor:
    """Comb position of frequency f (GHz); inverse of :func:`comb_to_ghz`."""
    if params.plan == FrequencyPlan.GEOMETRIC:
        return torch.log(f / params.f_min_ghz) / math.log(comb_ratio(params, n_inputs))
    return (f - params.f_min_ghz) / comb_spacing_ghz(params, n_inputs)


def input_frequencies_ghz(params: DeviceParams, n_inputs: int) -> torch.Tensor:
    """Nominal frequencies f_i of the input oscillators (GHz), following the plan."""
    return comb_to_ghz(torch.arange(n_inputs, dtype=torch.float64), params, n_inputs).to(torch.float32)


def tuning_range_comb(params: DeviceParams, n_inputs: int) -> tuple[float, float]:
    """Range of comb positions a resonance (or a trained input) can be tuned to."""
    return -params.tuning_margin, n_inputs - 1 + params.tuning_margin


def device_tuning_bounds(
    home_comb: torch.Tensor, params: DeviceParams, n_inputs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Comb bounds (lo, hi), shaped like ``home_comb``, of the devices fabricated at comb positions
    ``home_comb``: |f - f_fab| <= tuning_range * f_fab, intersected with :func:`tuning_range_comb`."""
    g_lo, g_hi = tuning_range_comb(params, n_inputs)
    if params.tuning_range is None:
        return torch.full_like(home_comb, g_lo), torch.full_like(home_comb, g_hi)
    f = comb_to_ghz(home_comb.to(torch.float64), params, n_inputs)
    r = params.tuning_range
    lo = ghz_to_comb(f * (1.0 - r), params, n_inputs).nan_to_num(neginf=g_lo).clamp(g_lo, g_hi)
    hi = ghz_to_comb(f * (1.0 + r), params, n_inputs).clamp(g_lo, g_hi)
    return lo.to(home_comb.dtype), hi.to(home_comb.dtype)


def quantise_comb(u: torch.Tensor, lo: torch.Tensor | float, hi: torch.Tensor | float, bits: int) -> torch.Tensor:
    """The nearest of 2^bits levels evenly spaced over [lo, hi] (comb units; both ends are levels) to each
    set-point u (clamped into [lo, hi] first)."""
    step = (hi - lo) / float(2**bits - 1)
    if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
        u = torch.maximum(torch.minimum(u, torch.as_tensor(hi, dtype=u.dtype)), torch.as_tensor(lo, dtype=u.dtype))
    else:
        u = u.clamp(lo, hi)
    return lo + torch.round((u - lo) / step) * step


def straight_through(u: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """q in the forward pass, the identity's gradient in the backward (straight-through estimator)."""
    return u + (q - u).detach()


def spread_factor(eps: torch.Tensor, params: DeviceParams) -> torch.Tensor:
    """True frequency / set-point of devices whose standard-normal fabrication draws are ``eps``:
    1 + freq_spread * eps (kept above 0.05)."""
    return (1.0 + params.freq_spread * eps).clamp_min(0.05)


def jittered(f: torch.Tensor, xi: torch.Tensor, alpha: torch.Tensor | float, params: DeviceParams) -> torch.Tensor:
    """Frequencies f moved by cycle-to-cycle noise: f (1 + alpha * freq_jitter_lw * xi), i.e. xi standard
    normal draws times freq_jitter_lw of the device's own linewidth alpha * f."""
    return f * (1.0 + (alpha * params.freq_jitter_lw) * xi)


def input_power(x: torch.Tensor, params: DeviceParams) -> torch.Tensor:
    """Powers (µW) the input oscillators emit for pixel values x in [0, 1]: P = p_max_uw * x (x itself when
    p_max_uw is 1, which is exact and saves a pass over the batch)."""
    return x if params.p_max_uw == 1.0 else params.p_max_uw * x


def noisy_power(p_uw: torch.Tensor, xi: torch.Tensor, params: DeviceParams) -> torch.Tensor:
    """Input powers with cycle-to-cycle relative noise: p (1 + power_noise * xi), never below 0."""
    return (p_uw * (1.0 + params.power_noise * xi)).clamp_min(0.0)


def spacing_in_linewidths(params: DeviceParams, n_inputs: int) -> float:
    """Input spacing divided by the resonator linewidth (exact for geometric, at band centre for linear)."""
    if params.plan == FrequencyPlan.GEOMETRIC:
        return (comb_ratio(params, n_inputs) - 1.0) / params.alpha
    f_mid = 0.5 * (params.f_min_ghz + params.f_max_ghz)
    return comb_spacing_ghz(params, n_inputs) / (params.alpha * f_mid)


# ---------------------------------------------------------------------------------------------------------
# Resonator response
# ---------------------------------------------------------------------------------------------------------


def detuning(f: torch.Tensor, f_r: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """Detuning in linewidths: x = (f - f_r) / (alpha * f_r)."""
    return (f - f_r).div_(alpha * f_r)


def detuning_partials(f_r: torch.Tensor, alpha: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """Partial derivatives of :func:`detuning`, factored so they don't depend on f: returns (a, b) with
    dx/df = a = 1/(alpha f_r) and dx/df_r = f * b, b = -1/(alpha f_r^2)."""
    a = 1.0 / (alpha * f_r)
    return a, -a / f_r


def lineshape(x: torch.Tensor, phi: float) -> torch.Tensor:
    """Normalised rectified response L(x) = cos(phi) 2x/(1+x^2) + sin(phi)/(1+x^2); peak |L| = 1."""
    inv = 1.0 / (1.0 + x * x)
    if phi == 0.0:
        return 2.0 * x * inv
    return (math.cos(phi) * 2.0 * x + math.sin(phi)) * inv


def lineshape_derivative(x: torch.Tensor, phi: float) -> torch.Tensor:
    """dL/dx of :func:`lineshape`."""
    inv = 1.0 / (1.0 + x * x)
    return (math.cos(phi) * 2.0 * (1.0 - x * x) - math.sin(phi) * 2.0 * x) * inv * inv


def detuning_scaled(f: torch.Tensor, f_r: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """:func:`detuning` with a = 1/(alpha f_r) already computed (:func:`detuning_partials`): x = (f - f_r) a,
    two tensor passes and no division (the training hot path)."""
    return torch.sub(f, f_r).mul_(a)


def lineshape_parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x d, d) with d = 1/(1+x^2), in three tensor passes; x is overwritten by x d. The lineshape is
    L = 2 cos(phi) x d + sin(phi) d (coefficients: :func:`lineshape_coefficients`) and its slope follows from
    the same parts (:func:`lineshape_half_slope`): the training hot path, equal to :func:`lineshape` and
    :func:`lineshape_derivative`."""
    d = torch.addcmul(x.new_ones(()), x, x).reciprocal_()
    return x.mul_(d), d


def lineshape_coefficients(phi: float) -> tuple[float, float]:
    """(2 cos(phi), sin(phi)): the lineshape as a combination of the parts x d and d of :func:`lineshape_parts`."""
    return 2.0 * math.cos(phi), math.sin(phi)


def lineshape_half_slope(
    xd: torch.Tensor, d: torch.Tensor, phi: float, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Half the slope dL/dx from the parts of :func:`lineshape_parts`: cos(phi) (d - 2 (x d)^2) - sin(phi) (x d) d
    (with 1 - x^2 = 2 - (1 + x^2), so (1 - x^2) d^2 = d - 2 (x d)^2). Written into ``out`` when given."""
    h = torch.addcmul(d, xd, xd, value=-2.0, out=out)
    c, s = math.cos(phi), math.sin(phi)
    if s:
        h.mul_(c).addcmul_(xd, d, value=-s)
    return h


def rectified_voltage(
    p_uw: torch.Tensor,
    f: torch.Tensor,
    f_r: torch.Tensor,
    params: DeviceParams,
    alpha: torch.Tensor | float | None = None,
    k_sd: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """DC voltage of one resonator (resonance f_r) driven by power p_uw at frequency f."""
    a = params.alpha if alpha is None else alpha
    k = params.k_sd if k_sd is None else k_sd
    return p_uw * k * lineshape(detuning(f, f_r, a), params.phi)


def chain_signs(n_resonators: int, parity: Parity = Parity.EVEN) -> torch.Tensor:
    """Signs s_k of the resonators of a series chain: (-1)^k ('even') or (-1)^(k+1) ('odd')."""
    k = torch.arange(n_resonators)
    s = 1.0 - 2.0 * (k % 2).to(torch.float32)
    return s if parity == Parity.EVEN else -s


def coupling_tensor(
    f_in: torch.Tensor,
    f_res: torch.Tensor,
    params: DeviceParams,
    alpha: torch.Tensor | None = None,
    k_sd: torch.Tensor | None = None,
    signs: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-resonator couplings c_jki = s_k K_SD L(x_ijk), shape (C, K, N), for inputs f_in (N,), f_res (C, K)."""
    a = params.alpha if alpha is None else alpha.unsqueeze(-1)
    k = params.k_sd if k_sd is None else k_sd.unsqueeze(-1)
    s = chain_signs(f_res.shape[1], params.parity) if signs is None else signs
    x = detuning(f_in.view(1, 1, -1), f_res.unsqueeze(-1), a)
    return s.view(1, -1, 1) * k * lineshape(x, params.phi)


def effective_weight(
    f_in: torch.Tensor,
    f_res: torch.Tensor,
    params: DeviceParams,
    alpha: torch.Tensor | None = None,
    k_sd: torch.Tensor | None = None,
) -> torch.Tensor:
    """Effective weight matrix W (C, N): W_ji = K_SD sum_k s_k L(x_ijk), so that V = P W^T + b."""
    return coupling_tensor(f_in, f_res, params, alpha, k_sd).sum(dim=1)


# ---------------------------------------------------------------------------------------------------------
# Spin-torque nano-oscillator neurons (hidden layers)
# ---------------------------------------------------------------------------------------------------------


def stno_current_ua(
    v: torch.Tensor, g_m: torch.Tensor | float, stno: STNOParams, bias_ua: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """DC current (µA) driven into an STNO by a chain voltage v (V, voltage bias included): g_m (µA/mV) * 1000 v
    plus a bias current ``bias_ua``, clamped to [I_th, clamp_ratio * I_th]."""
    return (v * (1000.0 * g_m) + bias_ua).clamp(stno.i_th_ua, stno.clamp_ratio * stno.i_th_ua)


def stno_power_uw(i_ua: torch.Tensor, stno: STNOParams) -> torch.Tensor:
    """Power (µW) an STNO emits at DC current i_ua (µA, already clamped): A (xi - 1)/(xi + Q) R I^2."""
    xi = i_ua / stno.i_th_ua
    return (stno.amplification * stno.r_ohm * 1e-6) * (xi - 1.0) / (xi + stno.q) * i_ua * i_ua
