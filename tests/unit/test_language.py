from service.analysis.language import is_english
from service.analysis.message import analyse_message


def test_english_and_short_texts_count_as_english() -> None:
    assert is_english("This is the third time I have asked you to fix this. Unacceptable.")
    assert is_english("ok thanks")
    assert is_english("FYI: the SEO report for Q3 is attached, KPIs are up.")


def test_other_languages_are_not_english() -> None:
    assert not is_english("Die Vorlagen sind abgenommen. Die Messebaufirma fragt danach.")
    assert not is_english("Merci beaucoup pour votre aide, nous vous recontacterons bientôt.")
    assert not is_english("Hola, muchas gracias por todo el trabajo de este año.")


def test_german_text_is_left_neutral_not_misread() -> None:
    result = analyse_message("Die Vorlagen sind abgenommen. Die Fußzeile verrutscht bei Folien.")
    assert result.language == "other"
    assert result.signals == ()
    assert result.friction < 0.2
