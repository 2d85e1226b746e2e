"""Short descriptions of a model for people (its name in the app, the CLI and the logs), and
where its attention frames sit on the audio (the live view draws the strip there)."""
from __future__ import annotations

from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.features.base import frame_span


def describe_network(cfg) -> str:
    """Short name of a ModelConfig's network: "baseline", "baseline + stats x5", ..."""
    name = cfg.arch + (" + stats" if cfg.stats_branch else "")
    return name + (f" x{cfg.ensemble}" if cfg.ensemble > 1 else "")


def describe_frontend(cfg) -> str:
    """Short name of a FrontendConfig: "logmel", "logmel, high-pass 60 Hz, loudness -23 LUFS,
    band CMVN", ..."""
    parts = [cfg.name]
    if cfg.highpass_hz:
        parts.append(f"high-pass {cfg.highpass_hz:g} Hz")
    if cfg.loudness != "none":
        parts.append(f"loudness {cfg.target_lufs:g} LUFS")
    if cfg.band_norm != "none":
        parts.append(f"band {cfg.band_norm.upper()}")
    return ", ".join(parts)


def attention_centre_s(frontend, frame_pool: int) -> float:
    """Seconds from the start of the analysed audio to the centre of the audio that attention
    frame 0 (``frame_pool`` frontend frames averaged by the network) is computed from; frame
    j's centre is j / attention_rate later. With speech_embedding each frame reads 0.785 s, so
    its centre lies ~0.39 s after its start."""
    start, stop = frame_span(frontend)
    step = SAMPLE_RATE / frontend.frame_rate
    return (start + stop + (frame_pool - 1) * step) / 2 / SAMPLE_RATE
