"""A broker or Redis password named by reference, so that it does not sit in the functions' environment.

A URI of an AMQP destination or of a Redis ledger may leave the password out and name where it is kept:

- ``password_secret=<name or ARN>``: an AWS Secrets Manager secret whose SecretString is the password (or a
  JSON object with a ``password`` string, the shape of Secrets Manager's key/value secrets). Read through
  Powertools Parameters and cached for five minutes, like the AccessKey secret, so a rotated password is
  picked up at the next connection without a redeploy.
- ``password_env=<VARIABLE>``: an environment variable (Function Compute, where there is no Secrets Manager).

The reference is checked at cold start (syntax only) and resolved when the destination or ledger is built
(first invocation), never at import. A reference that cannot be resolved is a ConfigurationError naming
the reference and never the value; nothing here logs or echoes a password.

A webhook's signing secrets are named the same way under other names (``keys=SECRET_REFERENCE_PARAMS``):
``secret_secret=<name or ARN>`` (a SecretString, or JSON with a ``secret`` string) and ``secret_env=<VARIABLE>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from aitask_relay.core.errors import ConfigurationError

REFERENCE_PARAMS = ("password_secret", "password_env")
SECRET_REFERENCE_PARAMS = ("secret_secret", "secret_env")  # a webhook's signing secrets (webhook.py)
SECRET_MAX_AGE_SECONDS = 300
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
# Secret names: 1-512 of A-Za-z0-9 /_+=.@-; an ARN adds ':' (CreateSecret, Name; DescribeSecret, SecretId:
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html).
_SECRET_ID = re.compile(r"^[A-Za-z0-9/_+=.@:-]{1,2048}$")


def check(
    params: Mapping[str, str], *, literal_password: bool, keys: tuple[str, str] = REFERENCE_PARAMS
) -> str | None:
    """What is wrong with a URI's password reference (cold start, no I/O), or None. ``keys``: the parameters that
    name a Secrets Manager secret and an environment variable (a webhook's are SECRET_REFERENCE_PARAMS, and its
    literal value is ``secret=``)."""
    in_secret, in_env = keys
    given = [key for key in keys if key in params]
    if not given:
        return None
    if len(given) > 1:
        return f"give {in_secret} or {in_env}, not both"
    if literal_password:
        if keys == REFERENCE_PARAMS:
            return f"gives a password and {given[0]}: leave the password out of the URI (user@host)"
        return f"gives a secret and {given[0]}: leave secret= out of the URI"
    value = params[given[0]]
    if value.startswith("whsec_"):  # a signing secret pasted where its name belongs: refused, never echoed
        return f"{given[0]} names where the secret is kept, not the secret itself"
    pattern = _SECRET_ID if given[0] == in_secret else _ENV_NAME
    if not pattern.match(value):
        return f"{given[0]} must be {'a secret name or ARN' if given[0] == in_secret else 'a variable name'}"
    return None


def resolver(
    params: Mapping[str, str],
    *,
    where: str,
    environ: Mapping[str, str] | None = None,
    fetch: Any = None,
    what: str = "password",
    keys: tuple[str, str] = REFERENCE_PARAMS,
) -> Callable[[], str] | None:
    """A function returning the current password for the URI's reference, or None when it names none.

    It is called once here, so a missing secret or variable fails the build (a ConfigurationError naming
    ``where`` and the reference); later calls (each new connection) read through the five-minute cache.
    """
    in_secret, in_env = keys
    if in_secret in params:
        secret = params[in_secret]

        def from_secret() -> str:
            return _secret(secret, where, fetch, what, in_secret)

        read = from_secret
    elif in_env in params:
        variable = params[in_env]
        env = environ if environ is not None else {}

        def from_env() -> str:
            value = env.get(variable, "")
            if not value:
                label = _label(what, in_env)
                raise ConfigurationError(f"{where}: {label} {variable!r} is not set or is empty")
            return value

        read = from_env
    else:
        return None
    read()
    return read


def _label(what: str, key: str) -> str:
    """How an error names the reference: the URI parameter (a password's, a webhook's), the variable's form
    otherwise (RELAY_SIGNING_SECRET's secretsmanager: / env:)."""
    if what == "password" or key not in REFERENCE_PARAMS:
        return key
    return f"{what} {'secretsmanager:' if key == 'password_secret' else 'env:'}"


def _secret(secret: str, where: str, fetch: Any, what: str = "password", key: str = "password_secret") -> str:
    try:
        if fetch is not None:
            value = fetch(secret)
        else:
            from aitask_relay.adapters import aws

            # The SecretString (or SecretBinary), cached for max_age seconds:
            # https://docs.aws.amazon.com/powertools/python/latest/utilities/parameters/#secretsprovider
            value = aws.secret(secret, max_age=SECRET_MAX_AGE_SECONDS)
    except Exception as exc:  # no such secret, no permission, Secrets Manager unreachable: never the value
        cause = type(exc.__cause__ or exc).__name__
        label = _label(what, key)
        raise ConfigurationError(f"{where}: {label} {secret!r} cannot be read ({cause})") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    # A password is JSON's "password"; a signing secret (a webhook's secret_secret=, RELAY_SIGNING_SECRET) is its
    # "secret", so that one Secrets Manager secret can serve a webhook and RELAY_SIGNING_SECRET alike.
    json_key = "password" if what == "password" else "secret"
    password = _password_of(value, json_key)
    if not password:
        raise ConfigurationError(
            f"{where}: {_label(what, key)} {secret!r} must hold the {what}, or JSON with a "
            f'"{json_key}" string'
        )
    return password


def _password_of(value: Any, json_key: str = "password") -> str:
    if not isinstance(value, str):
        return ""
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            return value  # a password that starts with "{"
        if isinstance(document, dict):
            password = document.get(json_key)
            return password if isinstance(password, str) else ""
    return value
