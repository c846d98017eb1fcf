from service.analysis.tone import assess, tone


def test_tone_sign_and_range():
    good = tone("Thank you, the new site looks great.")
    bad = tone("The new site is terrible and the copy is awful.")
    assert good.polarity > 0 > bad.polarity
    assert 0.0 <= good.subjectivity <= 1.0


def test_assess_matches_tone_in_one_pass():
    text = "I am not happy with the terrible layout, but the colours are nice."
    result, assessments = assess(text)
    assert result == tone(text)
    assert any(a.polarity < 0 for a in assessments)


def test_assess_is_textblobs_pattern_analyzer():
    """tone.py serves the fast port; what callers get is still PatternAnalyzer's answer."""
    from textblob.sentiments import PatternAnalyzer

    text = "Not bad at all! But the footer is really terrible :( and e.g. Mr. Lee isn't happy."
    ref = PatternAnalyzer().analyze(text, keep_assessments=True)
    result, found = assess(text)
    assert (result.polarity, result.subjectivity) == (ref.polarity, ref.subjectivity)
    assert [(a.words, a.polarity, a.subjectivity) for a in found] == [
        (tuple(words), p, s) for words, p, s, _label in ref.assessments
    ]
    assert len(found) >= 4
