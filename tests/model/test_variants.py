"""Channel variants of training utterances: cached and keyed correctly, recomputed when
corrupt, and babble that never comes from a test or validation speaker (or the speaker
itself)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from ser_studio.model.config.schema import ChannelConfig, FrontendConfig, TrainConfig
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.features.base import CountingFrontend
from ser_studio.model.features.registry import build_frontend
from ser_studio.model.training import fold_run
from ser_studio.model.training.data import FeatureDataset
from ser_studio.model.training.folds import Fold, SpeakerLeakError, make_folds
from ser_studio.model.training.variants import Babble, check_babble_pool, render_variants

CFG = ChannelConfig(variants=2, reverb_prob=0.5, noise_prob=1.0, babble_share=1.0)


@pytest.fixture(scope="module")
def corpus(synth_corpus):
    return load_corpus(synth_corpus)


def split(corpus):
    speakers = corpus.speakers
    target = [u for u in corpus.utterances if u.speaker == speakers[0]][:3]
    pool = [u for u in corpus.utterances if u.speaker in speakers[1:4]]
    return target, pool, list(speakers[4:])


def test_variants_are_cached_keyed_and_recomputed_when_corrupt(corpus, tmp_path):
    target, pool, forbidden = split(corpus)
    frontend = CountingFrontend(build_frontend(FrontendConfig(name="logmel")))
    first = render_variants(target, pool, frontend, CFG, seed=0,
                            forbidden_speakers=forbidden, cache_dir=tmp_path)
    assert frontend.calls == 6 and all(len(v) == 2 for v in first.values())
    path = target[0].path
    assert not torch.equal(first[path][0], first[path][1])  # two different chains
    again = render_variants(target, pool, frontend, CFG, seed=0,
                            forbidden_speakers=forbidden, cache_dir=tmp_path)
    assert frontend.calls == 6  # all from the cache
    assert all(torch.equal(first[p][k], again[p][k]) for p in first for k in range(2))
    entry = sorted((tmp_path / "variants").rglob("*.safetensors"))[0]
    entry.write_bytes(b"garbage")
    render_variants(target, pool, frontend, CFG, seed=0, forbidden_speakers=forbidden,
                    cache_dir=tmp_path)
    assert frontend.calls == 7  # exactly the corrupt entry was recomputed
    for changed in (dict(cfg=dataclasses.replace(CFG, snr_db=(0.0, 5.0))), dict(seed=1),
                    dict(pool=pool[:-1])):
        args = dict(cfg=CFG, seed=0, pool=pool) | changed
        before = frontend.calls
        render_variants(target, args["pool"], frontend, args["cfg"], seed=args["seed"],
                        forbidden_speakers=forbidden, cache_dir=tmp_path)
        assert frontend.calls == before + 6, changed  # another key: computed anew


def test_babble_pool_with_a_test_or_validation_speaker_is_refused(corpus, tmp_path):
    target, pool, forbidden = split(corpus)
    with pytest.raises(SpeakerLeakError, match="babble"):
        check_babble_pool(pool, [pool[0].speaker])
    frontend = build_frontend(FrontendConfig(name="logmel"))
    with pytest.raises(SpeakerLeakError):
        render_variants(target, pool, frontend, CFG, seed=0,
                        forbidden_speakers=[pool[-1].speaker], cache_dir=tmp_path)


def test_babble_never_uses_the_speakers_own_voice(corpus):
    _, pool, _ = split(corpus)
    babble = Babble(pool)
    speaker = pool[0].speaker
    draw = babble.sources_for(speaker)
    own = {u.path for u in pool if u.speaker == speaker}
    rng = __import__("numpy").random.default_rng(0)
    for _ in range(20):
        sources = draw(rng)
        assert 3 <= len(sources) <= 6
        used = {p for p, w in babble._audio.items() if any(w is s for s in sources)}
        assert used and not used & own


def test_experiment_draws_babble_from_training_side_speakers_only(corpus, monkeypatch):
    """Every member's validation speakers and the fold's test speakers stay out of the pool."""
    seen = {}

    def fake_render(utts, pool, frontend, cfg, *, seed, forbidden_speakers, **_):  # noqa: ARG001
        seen.update(utts=utts, pool=pool, forbidden=set(forbidden_speakers))
        check_babble_pool(pool, forbidden_speakers)
        return {}

    monkeypatch.setattr(fold_run, "render_variants", fake_render)
    cfg = TrainConfig(folds=5, val_speakers=1, channel=ChannelConfig(variants=2))
    _, folds = make_folds(corpus.utterances, kind=corpus.kind, folds=0, val_speakers=1, seed=0)
    members = [make_folds(corpus.utterances, kind=corpus.kind, folds=0, val_speakers=1,
                          seed=m)[1][0] for m in range(3)]
    run = SimpleNamespace(train_cfg=cfg, frontend=object(), corpus=corpus, cache_dir=None,
                          feature_bar=False, cancel=None, progress=None,
                          runner=None)
    fold_run.fold_variants(run, members)
    held = {s for f in members for s in (*f.val_speakers, *f.test_speakers)}
    assert {u.speaker for u in seen["pool"]}.isdisjoint(held)
    assert seen["forbidden"] == held
    assert {u.speaker for u in seen["utts"]} == {s for f in members for s in f.train_speakers}
    everyone = Fold(0, "", (), (), tuple(corpus.speakers))
    fold_run.fold_variants(run, [everyone])  # the final model: every speaker may babble
    assert {u.speaker for u in seen["pool"]} == set(corpus.speakers)


def test_dataset_uses_variants_with_their_probability():
    clean = torch.zeros(50, 4)
    variant = torch.ones(50, 4)
    utt = SimpleNamespace(path="a", label="x", speaker="s")
    mean, std = torch.zeros(4), torch.ones(4)
    for prob, expected in ((0.0, 0.0), (1.0, 1.0)):
        data = FeatureDataset({"a": clean}, [utt], ["x"], mean, std, max_frames=50,
                              train=True, variants={"a": [variant]}, variant_prob=prob)
        assert float(data[0][0].mean()) == expected
    half = FeatureDataset({"a": clean}, [utt] * 400, ["x"], mean, std, max_frames=50,
                          train=True, variants={"a": [variant]}, variant_prob=0.5)
    share = sum(float(half[i][0].mean()) for i in range(400)) / 400
    assert 0.4 < share < 0.6
    evaluation = FeatureDataset({"a": clean}, [utt], ["x"], mean, std, max_frames=50,
                                train=False, variants={"a": [variant]}, variant_prob=1.0)
    assert float(evaluation[0][0].mean()) == 0.0  # never at test time


def test_rendering_stops_when_cancelled(corpus, tmp_path):
    import threading

    from ser_studio.model.training.trainer import TrainingCancelled

    target, pool, forbidden = split(corpus)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TrainingCancelled):
        render_variants(target, pool, build_frontend(FrontendConfig(name="logmel")), CFG,
                        seed=0, forbidden_speakers=forbidden, cache_dir=tmp_path, cancel=cancel)


def test_a_variant_is_the_frontend_of_the_chain_s_audio(corpus, tmp_path):
    """With every stage off but a fixed -7.5 dB level, each variant's features are exactly the
    frontend's features of the file's audio 7.5 dB quieter (the chain runs on the waveform,
    stages at probability 0 do nothing)."""
    from ser_studio.model.audio.io import load_audio
    from ser_studio.model.augmentation.channel import gain

    target, pool, forbidden = split(corpus)
    level_only = ChannelConfig(variants=2, reverb_prob=0.0, noise_prob=0.0, eq_prob=0.0,
                               band_prob=0.0, codec_prob=0.0, clip_prob=0.0,
                               gain_db=(-7.5, -7.5))
    frontend = build_frontend(FrontendConfig(name="logmel"))
    out = render_variants(target[:1], pool, frontend, level_only, seed=0,
                          forbidden_speakers=forbidden, cache_dir=tmp_path)
    path = target[0].path
    want = frontend(gain(load_audio(path), -7.5))
    for variant in out[path]:
        torch.testing.assert_close(variant, want)
