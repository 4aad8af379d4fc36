"""The encrypted field: Fernet tokens in the database, plaintext in Python, keys that rotate."""

import pytest

from goals.fields import decrypt, encrypt


def test_a_secret_round_trips_and_is_never_stored_as_it_was_typed(settings):
    settings.GOALPOST_FIELD_KEY = "first-key"
    token = encrypt("sk-secret")
    assert "sk-secret" not in token and token != encrypt("sk-secret")  # a fresh IV each time
    assert decrypt(token) == "sk-secret"


def test_a_rotated_key_still_reads_what_the_old_one_wrote(settings):
    settings.GOALPOST_FIELD_KEY = "old-key"
    old = encrypt("sk-secret")
    settings.GOALPOST_FIELD_KEY = "new-key,old-key"
    assert decrypt(old) == "sk-secret"
    settings.GOALPOST_FIELD_KEY = "new-key"
    assert decrypt(encrypt("sk-other")) == "sk-other"


def test_a_lost_key_reads_as_no_secret_and_says_so(settings, caplog):
    settings.GOALPOST_FIELD_KEY = "old-key"
    token = encrypt("sk-secret")
    settings.GOALPOST_FIELD_KEY = "another-key"
    assert decrypt(token) == ""
    assert "store the secret again" in caplog.text


@pytest.mark.parametrize("value", ["", None])
def test_no_secret_stays_empty(value):
    from goals.fields import EncryptedTextField

    assert EncryptedTextField().get_prep_value(value) == value
