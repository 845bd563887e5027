"""Classical temporal filters, the baselines of the learned smoother (issue 7).

Each takes a (T, ...) array sampled at ``fps`` and filters every other axis independently along
time. Sources: zero-lag Butterworth as in biomechanics (Winter, Biomechanics and Motor Control of
Human Movement, section 2.2.4.4: a 2nd-order low-pass run forward and backward, cut-off corrected so
that the -3 dB point of the double pass stays at the asked cut-off); Savitzky-Golay (scipy.signal);
One-Euro (Casiez, Roussel & Vogel, CHI 2012; the reference implementation's recursion).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from ..errors import HMNError

FILTER_COLUMNS = 16  # signals filtered at once by butterworth


def butterworth(x: np.ndarray, fps: float, cutoff_hz: float = 6.0) -> np.ndarray:
    """Zero-lag 4th-order Butterworth low-pass (2nd order, forward and backward) along axis 0.

    The design cut-off is moved so that the double pass is at -3 dB exactly at ``cutoff_hz``
    (digital domain: tan(pi f_c / fs) / tan(pi f_design / fs) = (sqrt(2) - 1) ** (1/4) = 0.802).
    """
    nyquist = fps / 2.0
    if not 0.0 < cutoff_hz < nyquist:
        raise HMNError("butterworth", f"cut-off {cutoff_hz} Hz must lie in (0, {nyquist}) Hz at {fps} fps")
    correction = (np.sqrt(2.0) - 1.0) ** 0.25
    design_hz = fps / np.pi * np.arctan(np.tan(np.pi * cutoff_hz / fps) / correction)
    if design_hz >= nyquist * 0.999:
        raise HMNError("butterworth", f"cut-off {cutoff_hz} Hz is too close to the Nyquist frequency")
    b, a = signal.butter(2, design_hz / nyquist)
    if x.shape[0] < 2:
        return x.copy()
    # a block of columns at a time: filtfilt's float64 temporaries stay small for long clips
    columns = x.reshape(x.shape[0], -1)
    out = np.empty_like(columns)
    for start in range(0, columns.shape[1], FILTER_COLUMNS):
        block = columns[:, start : start + FILTER_COLUMNS]
        out[:, start : start + FILTER_COLUMNS] = signal.filtfilt(
            b, a, block, axis=0, padlen=min(3 * len(a), x.shape[0] - 1)
        )
    return out.reshape(x.shape)


def savitzky_golay(x: np.ndarray, fps: float, window_s: float = 0.5, polyorder: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing along axis 0 over an odd window of about ``window_s`` seconds.

    The window shrinks to the clip's length for short clips; a clip not longer than ``polyorder``
    frames is returned unchanged.
    """
    window = round(window_s * fps) | 1
    window = min(window, x.shape[0] if x.shape[0] % 2 else x.shape[0] - 1)
    if window <= polyorder:
        return x.copy()
    return signal.savgol_filter(x, window, polyorder, axis=0).astype(x.dtype)


def _smoothing_factor(cutoff_hz: np.ndarray | float, fps: float) -> np.ndarray | float:
    r = 2.0 * np.pi * cutoff_hz / fps
    return r / (r + 1.0)


def one_euro(
    x: np.ndarray, fps: float, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0
) -> np.ndarray:
    """One-Euro filter along axis 0 (causal, so it lags), vectorised over all other axes.

    x_hat_t = a x_t + (1 - a) x_hat_{t-1} with a = r / (r + 1), r = 2 pi f_c / fps and the adaptive
    cut-off f_c = min_cutoff_hz + beta |dx_hat|; dx_hat is the raw derivative low-passed at
    ``d_cutoff_hz`` (units of x per second).
    """
    out = np.empty_like(x)
    if x.shape[0] == 0:
        return out
    out[0] = x[0]
    a_d = _smoothing_factor(d_cutoff_hz, fps)
    dx_hat = np.zeros_like(x[0])
    for t in range(1, x.shape[0]):  # a recursion: the loop runs over time, vectorised over joints
        dx_hat = a_d * (x[t] - x[t - 1]) * fps + (1.0 - a_d) * dx_hat
        a = _smoothing_factor(min_cutoff_hz + beta * np.abs(dx_hat), fps)
        out[t] = a * x[t] + (1.0 - a) * out[t - 1]
    return out
