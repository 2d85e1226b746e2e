"""Probe: utterance mean+std of frames, logistic regression, the card's 4 actor folds.
speech_embedding + GE2E last layer (shipped frontend) vs + GE2E all 3 layers."""
import glob, os, sys, numpy as np, torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
from model.audio import load_audio
from model.features import build_frontend, frontend_parts
from model.config import FrontendConfig
from model.ge2e import ge2e_mel
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.metrics import recall_score
torch.set_num_threads(1)
EMO = {"01": "neutral", "02": "neutral", "03": "happy", "04": "sad", "05": "angry"}
fe = build_frontend(FrontendConfig(name="speech_embedding+ge2e"))
norm, (se, ge) = frontend_parts(fe)
L = ge.torch_lstm
layers = []
for i in range(3):
    l = torch.nn.LSTM(40 if i == 0 else 256, 256, 1, batch_first=True)
    for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(l, f"{n}_l0").data.copy_(getattr(L, f"{n}_l{i}").data)
    layers.append(l.eval())
X1, X2, y, g = [], [], [], []
corpus = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/ravdess-dev"
files = sorted(glob.glob(os.path.join(corpus, "audio", "*.flac")))
cache = os.path.join(os.environ.get("TMPDIR", "/tmp"), "probe_feats.npz")
if os.path.exists(cache):
    d = np.load(cache); X1, X2, y, g = d["X1"], d["X2"], d["y"], d["g"]
else:
    for f in files:
        parts = os.path.basename(f)[:-5].split("-")
        if parts[2] not in EMO: continue
        wav = norm(load_audio(f))
        s = se(wav).numpy()
        h = torch.from_numpy(ge2e_mel(wav))[None]
        outs = []
        with torch.inference_mode():
            for l in layers:
                h, _ = l(h); outs.append(h[0].numpy())
        st = lambda a: np.concatenate([a.mean(0), a.std(0)])
        X1.append(np.concatenate([st(s), st(outs[2])]))
        X2.append(np.concatenate([st(s), st(outs[0]), st(outs[1]), st(outs[2])]))
        y.append(EMO[parts[2]]); g.append(int(parts[6]))
    X1, X2, y, g = map(np.array, (X1, X2, y, g))
    np.savez(cache, X1=X1, X2=X2, y=y, g=g)
FOLDS = [(1, 2, 9, 10), (3, 4, 11, 12), (5, 6, 13, 14), (7, 8, 15, 16)]
for name, X in (("se+ge2e last", X1), ("se+ge2e all layers", X2)):
    for C in (0.01, 0.1, 1.0):
        uas = []
        for test in FOLDS:
            te = np.isin(g, test)
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))
            clf.fit(X[~te], y[~te])
            uas.append(recall_score(y[te], clf.predict(X[te]), average="macro"))
        print(f"{name:22s} C={C:<5} UA {np.mean(uas):.3f} +- {np.std(uas):.3f}  per fold {' '.join(f'{u:.2f}' for u in uas)}")
