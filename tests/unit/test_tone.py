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
