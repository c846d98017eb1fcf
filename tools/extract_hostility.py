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

import sys

from service.analysis import hostility
from tools.shipped import write_json_gz


def main() -> int:
    files = hostility._data_files()
    data = hostility.extract_parameters(*files)
    payload = {
        "format": hostility._FORMAT,
        "digest": hostility._digest(files),
        "source": f"alt-profanity-check {hostility._version()}",
        **data,
    }
    write_json_gz(hostility.SHIPPED, payload)
    print(f"wrote {hostility.SHIPPED} ({len(data['words'])} words, {payload['source']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
