"""Audio and feature constants: the one place these numbers live.

Every other module derives sample and frame counts from here; nobody else writes 16000.
"""


def _exact(value: float, what: str) -> int:
    """Return ``value`` as an int, refusing a value that is not a whole number."""
    as_int = int(round(value))
    if abs(as_int - value) > 1e-9:
        raise ValueError(f"{what} must be a whole number of samples, got {value}")
    return as_int


SAMPLE_RATE = 16_000  # Hz, what every frontend and model sees

# The seed's fixed utterance length for training crops.
CLIP_SECONDS = 3.0
CLIP_SAMPLES = _exact(CLIP_SECONDS * SAMPLE_RATE, "CLIP_SAMPLES")

# Windowing of a long recording (file timeline, `predict` on a long file).
WINDOW_SECONDS = 3.0
WINDOW_SAMPLES = _exact(WINDOW_SECONDS * SAMPLE_RATE, "WINDOW_SAMPLES")
HOP_SECONDS = 1.0
HOP_SAMPLES = _exact(HOP_SECONDS * SAMPLE_RATE, "HOP_SAMPLES")
# The shortest audio an emotion is told for: shorter clips cannot hold an emotional utterance
# (a corpus check warns about such clips; `predict` refuses such a file or --window).
MIN_UTTERANCE_SECONDS = 0.25
# The finest timeline hop. A finer one says nothing more (an emotion lasts seconds) and the
# work grows as window/hop: at the 3 s window a 0.1 s hop already scores each second 30 times.
# (--hop 0.0001 on a 10-minute file asked for about 5 million windows.)
MIN_HOP_SECONDS = 0.1

# Live recogniser: a sliding buffer, analysed every hop.
LIVE_BUFFER_SECONDS = 5.0
LIVE_BUFFER_SAMPLES = _exact(LIVE_BUFFER_SECONDS * SAMPLE_RATE, "LIVE_BUFFER_SAMPLES")
LIVE_HOP_SECONDS = 0.5
LIVE_HOP_SAMPLES = _exact(LIVE_HOP_SECONDS * SAMPLE_RATE, "LIVE_HOP_SAMPLES")

# Log-mel frontend: 25 ms window, 10 ms hop.
N_FFT = 400
MEL_HOP_LENGTH = 160
N_MELS = 80
MEL_FRAME_RATE = SAMPLE_RATE / MEL_HOP_LENGTH  # frames per second (100)

DEFAULT_ENCODER = "facebook/hubert-base-ls960"
