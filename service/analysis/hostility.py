"""Offensive-language probability from alt-profanity-check's shipped model, in pure Python.

The package ships a word TF-IDF vectorizer and a ``CalibratedClassifierCV`` (sigmoid
calibration over a linear SVM, one per CV fold) trained on ~200k human-labelled toxic and
offensive texts. Its own ``predict_prob`` costs tens of milliseconds per call (scikit-learn
overhead), so the parameters are read ONCE and the same probability is computed here:

* tokens: ``text.lower()``, then ``(?u)\\b\\w\\w+\\b`` (the vectorizer's settings; English stop
  words and out-of-vocabulary words carry no weight, unigrams only);
* x = tf * idf, L2-normalised over the vocabulary words present;
* per fold i: d_i = w_i . x + c_i, p_i = 1 / (1 + exp(a_i * d_i + b_i));  p = mean(p_i).

The parameters were read from the package's joblib files (which needs scikit-learn) by
``tools/extract_hostility.py`` and ship as plain gzipped JSON in
``resources/hostility.json.gz`` (no pickle, no scikit-learn at run time: importing it
would also make NLTK import SciPy in every process). When that file is missing, the
package's files are read directly (scikit-learn needed) and a copy is cached per user.

Being linear, the model explains itself: the log-odds contribution of each word is
``x_j * mean_i(-a_i * w_ij)``; a sentence's contribution is the sum over its words.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: The vectorizer's token pattern (checked against the shipped vectorizer at extraction).
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
TOKEN = re.compile(TOKEN_PATTERN)
_TOKEN = TOKEN
_FORMAT = 1
#: The parameters as shipped with saygoodbye (see tools/extract_hostility.py).
SHIPPED = Path(__file__).with_name("resources") / "hostility.json.gz"


class HostilityModelError(RuntimeError):
    """The shipped model cannot be read or has settings this scorer does not reproduce."""


@dataclass(frozen=True, eq=False)  # hashed by identity: one model per process
class HostilityModel:
    """Everything needed to score a text: per word, its idf and per-fold coefficients."""

    # word -> (idf * w_1, ..., idf * w_k, idf * mean_i(-a_i * w_i), idf)
    table: dict[str, tuple[float, ...]]
    intercepts: tuple[float, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]
    source: str  # package version and file digest, for the record
    # word -> max over folds of its positive coefficient, squared (for the Cauchy-Schwarz bound)
    pos_sq: dict[str, float] = field(default_factory=dict)

    @property
    def folds(self) -> int:
        return len(self.intercepts)


@dataclass(frozen=True)
class WordContribution:
    word: str
    logit: float  # log-odds this word adds (its share of the averaged linear score)


@dataclass(frozen=True)
class HostilityScore:
    """The model's probability for a text, and why."""

    probability: float
    words: tuple[WordContribution, ...]  # positive contributors, strongest first


# --------------------------------------------------------------------------- loading


def _data_files() -> tuple[Path, Path]:
    # find_spec, not importlib.resources: importing profanity_check imports scikit-learn
    # and unpickles the model (seconds), which the cached path exists to avoid.
    spec = importlib.util.find_spec("profanity_check")
    if spec is None or not spec.submodule_search_locations:
        raise HostilityModelError("alt-profanity-check is not installed")
    base = Path(next(iter(spec.submodule_search_locations))) / "data"
    files = base / "vectorizer.joblib", base / "model.joblib"
    if not all(f.is_file() for f in files):
        raise HostilityModelError(f"alt-profanity-check data files missing under {base}")
    return files


def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def _cache_dir() -> Path | None:
    """systemd's CacheDirectory= (``$CACHE_DIRECTORY``), else XDG, else ~/.cache."""
    for env in ("SAYGOODBYE_CACHE_DIR", "CACHE_DIRECTORY"):
        value = os.environ.get(env, "").split(":")[0]
        if value:
            return Path(value)
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "saygoodbye"
    home = Path.home()
    return home / ".cache" / "saygoodbye" if str(home) not in ("", "/") else None


def extract_parameters(vectorizer_path: Path, model_path: Path) -> dict:
    """Read the shipped joblib files with scikit-learn and return plain parameters.

    Refuses settings the pure scorer does not reproduce (n-grams, custom analyzers,
    sublinear tf, another norm or calibration), so a changed upstream model fails loudly
    instead of scoring wrongly.
    """
    import joblib  # heavy: only when no cached copy exists

    vec = joblib.load(vectorizer_path)
    model = joblib.load(model_path)
    params = vec.get_params()
    expected = {"analyzer": "word", "lowercase": True, "ngram_range": (1, 1), "norm": "l2",
                "use_idf": True, "sublinear_tf": False, "binary": False,
                "strip_accents": None, "preprocessor": None, "tokenizer": None,
                "token_pattern": TOKEN_PATTERN}
    wrong = {k: params.get(k) for k, v in expected.items() if params.get(k) != v}
    if wrong:
        raise HostilityModelError(f"unsupported vectorizer settings: {wrong}")
    if list(model.classes_) != [0, 1]:
        raise HostilityModelError(f"unexpected classes {list(model.classes_)}")
    idf = vec.idf_
    vocab = vec.vocabulary_
    intercepts, a, b, coefs = [], [], [], []
    for cc in model.calibrated_classifiers_:
        if cc.method != "sigmoid" or len(cc.calibrators) != 1:
            raise HostilityModelError("only binary sigmoid calibration is supported")
        est = cc.estimator
        coefs.append(est.coef_.ravel())
        intercepts.append(float(est.intercept_.ravel()[0]))
        a.append(float(cc.calibrators[0].a_))
        b.append(float(cc.calibrators[0].b_))
    words = {w: [float(idf[j])] + [float(c[j]) for c in coefs] for w, j in vocab.items()}
    return {"intercepts": intercepts, "a": a, "b": b, "words": words}


def _from_parameters(data: dict, source: str) -> HostilityModel:
    a = tuple(float(x) for x in data["a"])
    k = len(a)
    table = {}
    pos_sq: dict[str, float] = {}
    for word, (idf, *w) in data["words"].items():
        if len(w) != k:
            raise HostilityModelError(f"word {word!r}: {len(w)} coefficients for {k} folds")
        logit = sum(-ai * wi for ai, wi in zip(a, w, strict=True)) / k
        table[word] = (*(idf * wi for wi in w), idf * logit, idf)
        top = max(w)
        if top > 0:
            pos_sq[word] = top * top
    return HostilityModel(table=table, intercepts=tuple(float(x) for x in data["intercepts"]),
                          a=a, b=tuple(float(x) for x in data["b"]), source=source,
                          pos_sq=pos_sq)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("alt-profanity-check")
    except Exception:
        return "unknown"


def _load_shipped() -> HostilityModel | None:
    try:
        with gzip.open(SHIPPED, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    if data.get("format") != _FORMAT:
        raise HostilityModelError(f"{SHIPPED}: unsupported format {data.get('format')!r}")
    return _from_parameters(data, f"{data.get('source')} sha256:{data['digest'][:16]}")


@functools.lru_cache(maxsize=1)
def load_model() -> HostilityModel:
    """The shipped parameters; else the package's own files (via a per-user cache)."""
    shipped = _load_shipped()
    if shipped is not None:
        return shipped
    files = _data_files()
    digest = _digest(files)
    source = f"alt-profanity-check {_version()} sha256:{digest[:16]}"
    cache_dir = _cache_dir()
    cache = cache_dir / f"hostility-{digest[:24]}.json" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            if data.get("format") == _FORMAT and data.get("digest") == digest:
                return _from_parameters(data, source)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable hostility cache %s: %s", cache, exc)
    data = extract_parameters(*files)
    model = _from_parameters(data, source)
    if cache is not None:
        _write_cache(cache, {"format": _FORMAT, "digest": digest, **data})
    return model


def _write_cache(path: Path, data: dict) -> None:
    """Best effort, atomic: a read-only home (hardened unit) only costs the fast start."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".hostility-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as exc:
        log.info("hostility cache not written (%s): %s", path, exc)


# --------------------------------------------------------------------------- scoring


def tokens(lowered: str) -> list[str]:
    """The vectorizer's tokens of an already lower-cased text."""
    return _TOKEN.findall(lowered)


def count_words(model: HostilityModel, lowered: str) -> dict[str, int]:
    """Counts of the vocabulary words in an already lower-cased text."""
    table = model.table
    counts: dict[str, int] = {}
    for t in _TOKEN.findall(lowered):
        if t in table:
            counts[t] = counts.get(t, 0) + 1
    return counts


def probability_of_counts(model: HostilityModel, counts: dict[str, int]) -> tuple[float, float]:
    """(probability, 1/L2-norm) for vocabulary-word counts."""
    table = model.table
    k = model.folds
    sq = 0.0
    sums = [0.0] * k
    for word, tf in counts.items():
        row = table[word]
        idf = row[-1]
        sq += (tf * idf) ** 2
        for i in range(k):
            sums[i] += tf * row[i]
    inv = 1.0 / math.sqrt(sq) if sq > 0 else 0.0
    p = 0.0
    for i in range(k):
        z = model.a[i] * (sums[i] * inv + model.intercepts[i]) + model.b[i]
        # 1 / (1 + exp(z)), written to avoid overflow either way
        p += 1.0 / (1.0 + math.exp(z)) if z < 0 else math.exp(-z) / (1.0 + math.exp(-z))
    return p / k, inv


def probability(text: str, model: HostilityModel | None = None) -> float:
    """The same number as ``profanity_check.predict_prob([text])[0]``, without sklearn."""
    model = model or load_model()
    return probability_of_counts(model, count_words(model, text.lower()))[0]


def word_logit(model: HostilityModel, word: str) -> float:
    """A word's log-odds weight per unit of normalised tf-idf (0 outside the vocabulary)."""
    row = model.table.get(word)
    return row[-2] / row[-1] if row else 0.0


def score(text: str, *, top: int = 5, model: HostilityModel | None = None) -> HostilityScore:
    """Probability plus the words that pushed it up most (explanations for the owner)."""
    model = model or load_model()
    counts = count_words(model, text.lower())
    p, inv = probability_of_counts(model, counts)
    contrib = [WordContribution(w, tf * model.table[w][-2] * inv) for w, tf in counts.items()]
    contrib = sorted((c for c in contrib if c.logit > 0), key=lambda c: -c.logit)
    return HostilityScore(probability=p, words=tuple(contrib[:top]))


def _bound_probability(model: HostilityModel, radius: float) -> float:
    """Highest probability any text can reach when its positive coefficients have this norm.

    With x >= 0 and ||x|| = 1, w_i . x <= ||w_i+ restricted to the text's words|| (Cauchy-
    Schwarz), and the calibration is increasing in the decision value when a_i < 0.
    """
    p = 0.0
    for i in range(model.folds):
        z = model.a[i] * (model.intercepts[i] + radius) + model.b[i]
        p += 1.0 / (1.0 + math.exp(z)) if z < 0 else math.exp(-z) / (1.0 + math.exp(-z))
    return p / model.folds


@functools.lru_cache(maxsize=16)
def min_positive_mass(model: HostilityModel, threshold: float) -> float:
    """Sum of ``pos_sq`` below which a text cannot score above ``threshold`` (exact bound).

    Lets callers skip the scoring of sentences that cannot fire; 0.0 (never skip) when the
    calibration is not increasing.
    """
    if any(a >= 0 for a in model.a) or _bound_probability(model, 0.0) > threshold:
        return 0.0
    lo, hi = 0.0, 1.0
    while _bound_probability(model, hi) <= threshold:
        hi *= 2
        if hi > 1e6:
            return float("inf")
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _bound_probability(model, mid) <= threshold else (lo, mid)
    return lo * lo


def spans(lowered: str) -> Iterable[re.Match[str]]:
    """Token matches with offsets (used to attribute contributions to sentences)."""
    return _TOKEN.finditer(lowered)
