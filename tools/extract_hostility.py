"""Regenerate service/analysis/resources/hostility.json.gz from alt-profanity-check.

The offensive-language model ships inside the alt-profanity-check package (MIT
licence; a TF-IDF vectorizer and a calibrated linear SVM trained on ~200k
human-labelled toxic and offensive texts, nothing from our evaluation sets).
Reading its joblib files needs scikit-learn, which would otherwise be imported
by every saygoodbye process (and, through NLTK, SciPy: seconds and ~100 MB).
So the plain parameters are extracted once, here, and shipped as data:

    .venv/bin/pip install '.[model]' && .venv/bin/python -m tools.extract_hostility
"""

from __future__ import annotations

import gzip
import json
import sys

from service.analysis import hostility


def main() -> int:
    files = hostility._data_files()
    data = hostility.extract_parameters(*files)
    payload = {
        "format": hostility._FORMAT,
        "digest": hostility._digest(files),
        "source": f"alt-profanity-check {hostility._version()}",
        **data,
    }
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    # mtime=0: the same model gives byte-identical output
    with open(hostility.SHIPPED, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb",
                                                               mtime=0) as gz:
        gz.write(raw)
    print(f"wrote {hostility.SHIPPED} ({len(data['words'])} words, {payload['source']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
