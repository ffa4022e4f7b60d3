"""adapters.aws.secret: the provider is built on the module's client, and a reset() forgets both together."""

from __future__ import annotations

import threading

from aitask_relay.adapters import aws


class FakeSecretsManager:
    """get_secret_value as boto3's client answers it."""

    def get_secret_value(self, SecretId):  # boto3's keyword
        return {"Name": SecretId, "SecretString": f"value of {SecretId}"}


def test_a_reset_during_the_first_read_never_leaves_a_provider_on_a_forgotten_client(monkeypatch):
    # Given a reset() that another thread starts while secret() is getting its client
    resets = []

    def client(service, region=None):
        resets.append(threading.Thread(target=aws.reset))
        resets[-1].start()
        resets[-1].join(0.2)  # a reset that is not kept waiting runs now, between the client and the provider
        return FakeSecretsManager()

    monkeypatch.setattr(aws, "client", client)
    aws.reset()
    # When the secret is read, and the reset has finished
    value = aws.secret("s-1", max_age=60)
    resets[0].join()
    # Then the value is read, and no provider outlives the reset: the next read builds one on the client of now
    assert value == "value of s-1"
    assert aws._providers == {}
