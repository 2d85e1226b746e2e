"""Features of live windows with the work shared between hops.

The live recogniser analyses the newest 5 s every 0.5 s. The full path
(``Predictor.window_features``) runs the frontend over the whole window at every hop, so 90 %
of each window's work was done before. :class:`LiveFeatures` keeps one stream's work on grids
fixed to absolute stream sample positions (the recorder's window ``end``):

- speech_embedding: embedding k reads stream samples [1280 k, 1280 k + 12560), its 76 mel
  frames (0.76 s); each is computed once, through the frontend's own call over its stretch of
  audio, and a hop computes only the embeddings whose context ended in it.
- GE2E: its mel frame m (25 ms centred on sample 160 m, model.features.ge2e.ge2e_mel) is
  computed once, at unit gain (mel power scales exactly with the gain squared). The LSTM is not
  shared: the model was trained on states that start from zeros at the window's start, and
  states carried from earlier audio move the class probabilities far. Each window runs the
  frontend's LSTM from zeros over the cached mel at its own gain, as the full path does, but
  only over the frames the combined features use (~4.2 s of 5 s). (Runs for coming windows
  started early and advanced together in batches cost about as much; the figures for both are
  in bench/results/docstring-history.md.)
- combined: frame k is embedding k beside the mean of GE2E outputs [8 k, 8 k + 8)
  (model.features.combined's pooling).

A window [s, e) gets the frames k >= ceil(s / 1280) whose audio ends by e; they start
``offset`` (< 80 ms) into the window.

Phases: with ``phases`` P > 1 the embeddings lie on P grids of 80 ms, offset from each other by
80 / P ms, each held as above; a window takes the grid whose first position is the first at or
after its start, so a window starting on a multiple of 80 / P ms gets exactly the frames the full
path computes for it. A file's timeline (3 s every 1 s: every other window starts 40 ms off the
80 ms grid) uses two, so each window's frames are the full path's; the live hop (0.5 s: four
offsets) uses one, the stream's grid (model.inference.window_stream chooses). On two grids a
window shares only the few frames whose context also lay in the window two hops back, so they
keep the gain they were computed at (regain_db defaults to infinity there): the per-window
path's labels stay the same, and recomputing them would cost what they share.

Input high-pass (model.audio.highpass, when the model has one): run over the stream, each hop
filtering only its new samples; a window therefore differs from the full path's (which filters
the window alone, from its first sample's steady state) only in its first ~0.25 s, and only
below the cut-off, where the filter's start state matters.

Loudness: the window's Level is measured as the full path measures it (on the window as the
stream's high-pass left it: within ~1e-6 dB of the full path), and new embeddings are
computed at its gain; the GE2E run always uses it. Embeddings already held keep the gain of the
hop that computed them unless it is more than ``regain_db`` from the window's: those are
computed again.

What still differs from the full path, by design: the 80 ms grid sits on stream positions
instead of the window's start (frames shifted by up to 70 ms), and held embeddings carry an
earlier hop's gain (within ``regain_db``). bench/live_agreement.py measures what that does to
the class probabilities on real speech.

One stream, one thread. There is no Qt here.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ser_studio.model.audio import highpass
from ser_studio.model.audio.loudness import Level, LoudnessNormaliser, measure
from ser_studio.model.constants import MEL_HOP_LENGTH, N_FFT, SAMPLE_RATE
from ser_studio.model.features.base import NormalisedFrontend, as_waveform, frontend_parts
from ser_studio.model.features.combined import ConcatFrontend
from ser_studio.model.features.ge2e import N_MELS, ge2e_mel
from ser_studio.model.features.speech_embedding import CONTEXT_FRAMES, STEP_FRAMES

REGAIN_DB = 0.5  # held embeddings further than this from the window's gain: computed again
GE2E_MARGIN = 2  # GE2E mel frames recomputed left of new ones: their STFT is then not padded
HEAD_FRAMES = 2  # GE2E frames whose 25 ms reach left of a window's start: padded there


def _runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index pairs of the True stretches of ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


class _EmbeddingTrack:
    """speech_embedding frames k on the stream's 80 ms grid, each with the gain it saw."""

    def __init__(self, frontend) -> None:
        self.frontend = frontend
        self.step = STEP_FRAMES * MEL_HOP_LENGTH
        # the mel model gives (N - 400) // 160 frames: samples for CONTEXT_FRAMES of them
        self.span = CONTEXT_FRAMES * MEL_HOP_LENGTH + N_FFT
        self.clear()

    def clear(self) -> None:
        self._grids: dict[int, tuple[int, torch.Tensor, np.ndarray]] = {}

    def _grid(self, shift: int) -> tuple[int, torch.Tensor, np.ndarray]:
        """(first frame, frames (F, 96), their gains (F,)) held on the grid ``shift`` samples
        off the stream's 80 ms grid."""
        return self._grids.get(shift, (0, torch.zeros(0, self.frontend.dim), np.zeros(0)))

    def last_ready(self, end: int) -> int:
        """Last frame of the stream's grid whose audio ends by stream sample ``end``."""
        return (end - self.span) // self.step

    def can_extend(self, start: int, shift: int = 0) -> bool:
        """Whether the frames held on this grid reach ``start`` (a grid holding none: yes,
        its frames are computed as the window needs them)."""
        first, frames, _ = self._grid(shift)
        return frames.shape[0] == 0 or (first + frames.shape[0]) * self.step + shift >= start

    def window(self, wav, start, level: Level, k0: int, k1: int, regain_db: float,
               shift: int = 0) -> tuple:
        """Frames k0..k1 (T, 96) of the grid ``shift`` samples off the stream's (frame k at
        stream sample shift + 1280 k) for the window ``wav`` starting at stream sample
        ``start``; held frames whose gain is off by more than ``regain_db`` are computed
        again."""
        first, held_frames, held_gains = self._grid(shift)
        if held_frames.shape[0] == 0 or k0 < first:
            first, held_frames, held_gains = k0, held_frames[:0], held_gains[:0]
        held_frames, held_gains = held_frames[k0 - first:], held_gains[k0 - first:]
        held = min(held_frames.shape[0], k1 - k0 + 1)
        stale = np.abs(held_gains[:held] - level.gain_db) > regain_db
        todo = np.concatenate([stale, np.ones(k1 - k0 + 1 - held, dtype=bool)])
        frames = torch.cat([held_frames[:held], torch.zeros(len(todo) - held,
                                                            self.frontend.dim)])
        gains = np.concatenate([held_gains[:held], np.zeros(len(todo) - held)])
        origin = shift - start
        for a, b in _runs_of(todo):
            lo = (k0 + a) * self.step + origin
            hi = (k0 + b) * self.step + self.span + origin
            frames[a:b + 1] = self.frontend(LoudnessNormaliser.apply(wav[lo:hi], level))[
                :b - a + 1]
            gains[a:b + 1] = level.gain_db
        self._grids[shift] = (k0, frames, gains)
        return frames, int(stale.sum()), int(todo.sum())

    def finish(self, parts: list[torch.Tensor], factor: int) -> list[torch.Tensor]:
        """The windows' frames (``window`` computed them whole)."""
        return parts


class _Ge2eTrack:
    """GE2E mel frames m on the stream's 10 ms grid, at unit gain; a window's LSTM run."""

    def __init__(self, frontend) -> None:
        self.frontend = frontend
        self.step, self.reach = MEL_HOP_LENGTH, N_FFT // 2
        self.clear()

    def clear(self) -> None:
        self.mel_first, self.mel = 0, np.zeros((0, N_MELS), dtype=np.float32)

    @property
    def mel_next(self) -> int:
        return self.mel_first + self.mel.shape[0]

    def last_ready(self, end: int) -> int:
        return (end - self.reach) // self.step

    def can_extend(self, start: int, shift: int = 0) -> bool:
        """Whether the mel frames held reach ``start`` (on every grid: mel frames are 10 ms)."""
        return self.mel.shape[0] > 0 and (self.mel_next - GE2E_MARGIN) * self.step >= start

    def extend_mel(self, wav: np.ndarray, start: int, end: int, fresh: bool) -> None:
        """Mel frames up to the last one ``end`` completes (from the window's start when
        ``fresh``)."""
        a, b = (-(-start // self.step), self.last_ready(end)) if fresh else \
            (self.mel_next, self.last_ready(end))
        if b < a:
            return
        skip = 0 if fresh else GE2E_MARGIN
        lo, hi = (a - skip) * self.step - start, b * self.step + self.reach - start
        new = ge2e_mel(wav[lo:hi])[skip:skip + b - a + 1]
        if fresh:
            self.mel_first, self.mel = a, new
        else:
            self.mel = np.concatenate([self.mel, new])

    def window(self, wav: np.ndarray, start: int, level: Level, m0: int,
               m1: int) -> np.ndarray:
        """The LSTM's input (m1 - m0, 40) for frames m0..m1-1 at the window's gain: run from
        zeros at m0 (``finish``), it gives what the frontend gives a window starting at sample
        160 m0."""
        lo = m0 * self.step - start  # the first frames reach left of m0: padded there
        head = ge2e_mel(wav[lo:lo + HEAD_FRAMES * self.step + self.reach])[:HEAD_FRAMES]
        mel = np.concatenate([head, self.mel[m0 + HEAD_FRAMES - self.mel_first:
                                             m1 - self.mel_first]])
        self.mel, self.mel_first = self.mel[m0 - self.mel_first:], m0
        power = np.float32(10.0 ** (level.gain_db / 10.0))  # mel power scales with gain^2
        return mel * power

    def finish(self, inputs: list[np.ndarray], factor: int) -> list[torch.Tensor]:
        """The windows' frames from their ``window`` inputs (T_i, 40): the LSTM run from zeros
        over each, pooled ``factor`` states a frame (model.features.combined). Inputs of one
        length go through in one batch (the same outputs as one by one, for less CPU)."""
        out: list[torch.Tensor | None] = [None] * len(inputs)
        for length in sorted({x.shape[0] for x in inputs}):
            idx = [i for i, x in enumerate(inputs) if x.shape[0] == length]
            with torch.inference_mode():
                states, _ = self.frontend.lstm(torch.from_numpy(np.stack([inputs[i]
                                                                          for i in idx])))
            for row, i in enumerate(idx):
                out[i] = ConcatFrontend._pool(states[row].clone(), factor)
        return out


_TRACKS = {"speech_embedding": _EmbeddingTrack, "ge2e": _Ge2eTrack}


class LiveFeatures:
    """One live stream's frames, for windows given with their absolute end sample.

    Counters: ``refills`` (windows computed whole: stream start, a gap, time going back),
    ``updates`` (windows built on held work), ``regained`` (of those, windows that computed
    held frames again because the gain moved); ``last`` says what the newest window computed.
    """

    def __init__(self, frontend, regain_db: float | None = None, phases: int = 1) -> None:
        """regain_db: None gives REGAIN_DB on one grid, infinity on several (see the module
        docstring's Phases)."""
        if not self.supports(frontend):
            raise ValueError(f"no streaming form for the {frontend.config.name!r} frontend; "
                             f"available = {list(_TRACKS)} or several joined with '+'")
        self._stage = frontend if isinstance(frontend, NormalisedFrontend) else None
        parts = frontend_parts(frontend)[1]
        self._highpass_hz = self._stage.highpass_hz if self._stage is not None else 0.0
        self._highpass, self._filtered = None, np.zeros(0, dtype=np.float32)
        self._tracks = [_TRACKS[p.config.name](p) for p in parts]
        self.frame_rate = float(frontend.frame_rate)
        self.step = int(round(SAMPLE_RATE / self.frame_rate))
        self._factors = [self.step // t.step for t in self._tracks]
        self.regain_db = float(regain_db if regain_db is not None
                               else REGAIN_DB if phases == 1 else math.inf)
        if phases < 1 or self.step % phases or (self.step // phases) % MEL_HOP_LENGTH:
            raise ValueError(f"phases {phases}: must divide the {self.step}-sample frame step "
                             f"into multiples of {MEL_HOP_LENGTH} samples")
        self.quantum = self.step // int(phases)  # samples between the grids
        self.refills = self.updates = self.regained = 0
        self.last: dict[str, int] = {}
        self._start, self._end = 0, None  # the previous window's

    MAX_PHASES = 2  # more grids would cost more than they share at the live hop

    @classmethod
    def phases_for(cls, frontend, hop: int | None) -> int:
        """Grids that give windows ``hop`` samples apart the full path's frames: the fewest
        (up to MAX_PHASES) whose spacing divides the hop; 1 (the stream's grid) when none
        does or the hop is not known."""
        step = int(round(SAMPLE_RATE / float(frontend.frame_rate)))
        for phases in range(1, cls.MAX_PHASES + 1):
            if hop and step % phases == 0 and hop % (step // phases) == 0 \
                    and (step // phases) % MEL_HOP_LENGTH == 0:
                return phases
        return 1

    @staticmethod
    def supports(frontend) -> bool:
        """Whether ``frontend`` (from build_frontend) has a streaming form here."""
        return all(getattr(p, "config", None) is not None and p.config.name in _TRACKS
                   for p in frontend_parts(frontend)[1])

    def reset(self) -> None:
        """Forget the stream: the next window is computed whole."""
        for track in self._tracks:
            track.clear()
        self._highpass = None
        self._end = None

    def _condition(self, wav: np.ndarray, end: int, fresh: bool) -> np.ndarray:
        """The window (N,) through the input high-pass, run over the stream: only the samples
        new since the previous window are filtered (from the window's steady state when
        ``fresh``), so a hop costs a hop's filtering, not a window's."""
        if not self._highpass_hz:
            return wav
        n = wav.shape[0]
        if fresh or self._highpass is None:
            self._highpass = highpass.stream(self._highpass_hz)
            filtered = self._highpass(wav)
        else:
            new = min(end - self._end, n)
            held = self._filtered if new <= 0 else np.concatenate(
                [self._filtered, self._highpass(wav[n - new:])])
            filtered = held[-n:]
        self._filtered = np.asarray(filtered, dtype=np.float32)
        return self._filtered

    def features(self, wav: np.ndarray, end: int) -> tuple[torch.Tensor, Level, int] | None:
        """Features (T, D) of the window ``wav`` (N,) float32 ending at stream sample ``end``,
        its Level and how far into the window the first frame's audio starts (samples).
        None for a window too short for one frame (use the full path)."""
        pending = self.prepare(wav, end)
        return None if pending is None else self.finish([pending])[0]

    def finish(self, pending: list[tuple]) -> list[tuple[torch.Tensor, Level, int]]:
        """``features`` of windows ``prepare`` took up, in order: their GE2E LSTM runs go
        through in batches (``_Ge2eTrack.finish``: the same features as one by one)."""
        done = [track.finish([p[0][j] for p in pending], factor)
                for j, (track, factor) in enumerate(zip(self._tracks, self._factors))]
        return [(torch.cat([frames[w] for frames in done], dim=1).contiguous(), level, offset)
                for w, (_, level, offset) in enumerate(pending)]

    def prepare(self, wav: np.ndarray, end: int) -> tuple | None:
        """The first half of ``features``: the window is taken up (the stream's held work
        moves on to it) and all but its GE2E LSTM run is done; ``finish`` completes it. None
        for a window too short for one frame."""
        wav = as_waveform(wav).numpy()
        n, end = wav.shape[0], int(end)
        start = end - n
        first = -(-start // self.quantum) * self.quantum  # the first grid position in it
        shift = first % self.step  # which grid: samples off the stream's
        k0 = (first - shift) // self.step
        k1 = min((t.last_ready(end - shift) + 1) // k - 1
                 for t, k in zip(self._tracks, self._factors))
        if k1 < k0:
            return None
        fresh = self._end is None or end < self._end or start < self._start or not all(
            t.can_extend(start, shift) for t in self._tracks)
        if fresh:
            self.reset()
            self.refills += 1
        else:
            self.updates += 1
        raw, wav = wav, self._condition(wav, end, fresh)
        level = self._stage.measure(wav, raw) if self._stage is not None else measure(wav)
        self._start, self._end = start, end
        parts, stale, computed = [], 0, 0
        for track, factor in zip(self._tracks, self._factors):
            if isinstance(track, _Ge2eTrack):
                track.extend_mel(wav, start, end, fresh)
                m = shift // track.step
                parts.append(track.window(wav, start, level, k0 * factor + m,
                                          (k1 + 1) * factor + m))
            else:
                frames, stale, computed = track.window(wav, start, level, k0, k1,
                                                       self.regain_db, shift)
                parts.append(frames)
        self.regained += int(not fresh and stale > 0)
        self.last = {"embeddings": computed, "embeddings_regained": stale, "fresh": int(fresh)}
        return parts, level, first - start
