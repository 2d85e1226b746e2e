"""Frontends by name: a FrontendConfig (or a command-line spec) -> the frontend it names.

The one module that imports the concrete frontends (``logmel``, ``speech_embedding``, ``ge2e``,
``whisper``, ``hubert``, ``combined``), so that none of them, nor the contract in
``model.features.base``, needs to know the others. Encoder frontends are imported when asked
for: transformers is slow to import.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ser_studio.model.config.schema import (FRONTENDS, LAYER_MODES, WHISPER_FRONTENDS,
                                            FrontendConfig)
from ser_studio.model.constants import DEFAULT_ENCODER
from ser_studio.model.features.base import Frontend, with_input_stage
from ser_studio.model.features.logmel import LogMelFrontend


def parse_frontend_spec(spec: str) -> FrontendConfig:
    """Parse a command-line frontend spec into a FrontendConfig.

    Accepted: ``logmel``, ``speech_embedding``, ``ge2e``, ``whisper-base``, ``whisper-tiny.en``
    (its block: the config's whisper_block), ``hubert``, ``hubert:ID_OR_DIR``,
    ``hubert@weighted``, ``hubert:ID_OR_DIR@weighted`` (``@last`` is the default). A local
    folder that exists is stored as an absolute path, so a checkpoint made from it works from
    any working directory.
    """
    text = spec.strip()
    layer_mode = "last"
    head, sep, tail = text.rpartition("@")
    if sep and tail in LAYER_MODES:
        text, layer_mode = head, tail
    name, _, encoder = text.partition(":")
    if "+" in name:
        return FrontendConfig(name=name)  # a combination: its parts are checked there
    if name not in FRONTENDS:
        raise ValueError(
            f"frontend spec {spec!r}: unknown frontend {name!r}; available = {list(FRONTENDS)} "
            "(e.g. 'logmel', 'speech_embedding', 'hubert', "
            "'hubert:facebook/hubert-base-ls960', 'hubert:/path/to/folder@weighted')"
        )
    if name in ("logmel", "speech_embedding", "ge2e") + WHISPER_FRONTENDS:
        if encoder or layer_mode != "last":
            raise ValueError(f"frontend spec {spec!r}: {name} takes no encoder or layer mode")
        return FrontendConfig(name=name)
    encoder = encoder.strip() or DEFAULT_ENCODER
    local = Path(encoder).expanduser()
    if local.is_dir():
        encoder = str(local.resolve())
    return FrontendConfig(name="hubert", encoder=encoder, layer_mode=layer_mode)



def build_frontend(cfg: FrontendConfig) -> Frontend:
    """The frontend for ``cfg``, behind its input stage (``with_input_stage``: the high-pass and
    the loudness normaliser the config asks for); a name joined with "+" combines frontends
    (model.features.combined). An encoder frontend loads its weights now and raises
    FrontendUnavailable when they cannot be had."""
    parts = cfg.name.split("+")
    if len(parts) == 1:
        inner = _single(cfg)
    else:
        from ser_studio.model.features.combined import ConcatFrontend

        inner = ConcatFrontend(cfg, [_single(dataclasses.replace(
            cfg, name=name, band_norm=cfg.band_norm if name == "logmel" else "none"))
            for name in parts])
    return with_input_stage(inner)



def _single(cfg: FrontendConfig) -> Frontend:
    """One frontend of ``cfg.name`` (no normaliser)."""
    if cfg.name == "logmel":
        return LogMelFrontend(cfg)
    if cfg.name == "hubert":
        # transformers is slow to import
        from ser_studio.model.features.hubert import HFEncoderFrontend

        return HFEncoderFrontend(cfg)
    if cfg.name == "speech_embedding":
        from ser_studio.model.features.speech_embedding import SpeechEmbeddingFrontend

        return SpeechEmbeddingFrontend(cfg)
    if cfg.name == "ge2e":
        from ser_studio.model.features.ge2e import GE2EFrontend

        return GE2EFrontend(cfg)
    if cfg.name in WHISPER_FRONTENDS:
        from ser_studio.model.features.whisper import WhisperFrontend

        return WhisperFrontend(cfg)
    raise ValueError(f"frontend {cfg.name!r} not known; available = {list(FRONTENDS)}")

