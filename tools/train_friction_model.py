"""Train service/analysis/resources/friction_model.json.gz from data/friction_corpus.

The corpus is client mail written for this project (JSON Lines: text, label 1/0, kind),
never taken from an evaluation set. The model is an L2-regularised logistic regression over
the features of ``service.analysis.friction_model.grams`` (words and word pairs, present or
not), so scoring at run time is a sum of shipped weights. The regularisation strength is
chosen by 5-fold cross-validated ROC-AUC on the corpus alone.

    .venv/bin/pip install -e '.[model]' && .venv/bin/python -m tools.train_friction_model

Output is deterministic (fixed folds; tools/shipped.py writes the same bytes for the same weights).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from service.analysis import friction_model
from service.analysis.friction import Doc
from tools.shipped import write_json_gz

CORPUS = Path(__file__).resolve().parent.parent / "data" / "friction_corpus"
C_GRID = (0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
MIN_COUNT = 2  # an n-gram seen in one example only says more about that example
PRECISION = 4  # decimals kept per weight
# "Noted." or "Ok." reads as friction only after a problem the text does not show: such
# labels belong to the thread (the health score's cooling signal), not to the words, and
# would teach the model that "ok" is friction. Friction lines this short are left out.
MIN_WORDS_FOR_FRICTION = 3
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def load_corpus(folder: Path) -> tuple[list[str], list[int], str]:
    texts, labels = [], []
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.jsonl")):
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw)
        for lineno, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                text, label = str(item["text"]), int(item["label"])
            except (ValueError, KeyError, TypeError) as exc:
                raise SystemExit(f"{path}:{lineno}: {exc}") from exc
            if label not in (0, 1):
                raise SystemExit(f"{path}:{lineno}: label must be 0 or 1")
            if label and len(_WORD.findall(text)) < MIN_WORDS_FOR_FRICTION:
                continue
            texts.append(text)
            labels.append(label)
    return texts, labels, digest.hexdigest()


def features(text: str) -> list[str]:
    doc = Doc(text)
    return sorted(friction_model.grams(friction_model.tokens(doc.lower)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.train_friction_model")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--out", type=Path, default=friction_model.SHIPPED)
    args = ap.parse_args(argv)

    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    texts, labels, digest = load_corpus(args.corpus)
    print(f"{len(texts)} examples, {sum(labels)} with friction")

    def pipeline(c: float):
        return make_pipeline(
            CountVectorizer(analyzer=features, binary=True, min_df=MIN_COUNT),
            LogisticRegression(C=c, max_iter=5000),
        )

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    results = {}
    for c in C_GRID:
        auc = cross_val_score(pipeline(c), texts, labels, cv=folds, scoring="roc_auc").mean()
        results[c] = auc
        print(f"C={c:<4} cross-validated ROC-AUC {auc:.3f}")
    best = max(C_GRID, key=lambda c: (round(results[c], 3), -c))
    model = pipeline(best).fit(texts, labels)
    vec, lr = model.steps[0][1], model.steps[1][1]
    weights = {g: round(float(w), PRECISION)
               for g, w in zip(vec.get_feature_names_out(), lr.coef_[0], strict=True)
               if round(float(w), PRECISION)}
    payload = {
        "format": friction_model.FORMAT,
        "source": f"data/friction_corpus sha256:{digest[:16]} n={len(texts)} C={best} "
                  f"cv_auc={results[best]:.3f}",
        "intercept": round(float(lr.intercept_[0]), PRECISION),
        "weights": weights,
    }
    write_json_gz(args.out, payload)
    print(f"wrote {args.out}: {len(weights)} weights, C={best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
