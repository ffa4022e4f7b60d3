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

A webhook's signing secrets are named the same way, with ``what="secret"``: ``secret_secret=<name or ARN>``
(a SecretString, or JSON with a ``secret`` string) and ``secret_env=<VARIABLE>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from aitask_relay.core.errors import ConfigurationError

REFERENCE_PARAMS = ("password_secret", "password_env")
SECRET_MAX_AGE_SECONDS = 300
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
# Secret names: 1-512 of A-Za-z0-9 /_+=.@-; an ARN adds ':' (CreateSecret, Name; DescribeSecret, SecretId:
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html).
_SECRET_ID = re.compile(r"^[A-Za-z0-9/_+=.@:-]{1,2048}$")


def reference_params(what: str = "password") -> tuple[str, str]:
    """The two query parameters that name where ``what`` is kept: ``<what>_secret`` and ``<what>_env``."""
    return f"{what}_secret", f"{what}_env"


def check(params: Mapping[str, str], *, literal_password: bool, what: str = "password") -> str | None:
    """What is wrong with a URI's reference to its ``what`` (cold start, no I/O), or None. ``literal_password``:
    the URI also gives the value itself (a password in its userinfo, a ``secret=``)."""
    in_secret, in_env = reference_params(what)
    given = [key for key in (in_secret, in_env) if key in params]
    if not given:
        return None
    if len(given) > 1:
        return f"give {in_secret} or {in_env}, not both"
    if literal_password:
        where = "the URI (user@host)" if what == "password" else f"the URI ({what}=)"
        return f"gives a {what} and {given[0]}: leave the {what} out of {where}"
    value = params[given[0]]
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
) -> Callable[[], str] | None:
    """A function returning the current ``what`` (a password, a webhook's secrets) for the URI's reference, or
    None when it names none.

    It is called once here, so a missing secret or variable fails the build (a ConfigurationError naming
    ``where`` and the reference); later calls (each new connection) read through the five-minute cache.
    """
    in_secret, in_env = reference_params(what)
    if in_secret in params:
        secret = params[in_secret]

        def from_secret() -> str:
            return _secret(secret, where, fetch, what)

        read = from_secret
    elif in_env in params:
        variable = params[in_env]
        env = environ if environ is not None else {}

        def from_env() -> str:
            value = env.get(variable, "")
            if not value:
                raise ConfigurationError(f"{where}: {in_env} {variable!r} is not set or is empty")
            return value

        read = from_env
    else:
        return None
    read()
    return read


def _secret(secret: str, where: str, fetch: Any, what: str) -> str:
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
        raise ConfigurationError(f"{where}: {what}_secret {secret!r} cannot be read ({cause})") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    password = _password_of(value, what)
    if not password:
        raise ConfigurationError(
            f'{where}: {what}_secret {secret!r} must hold the {what}, or JSON with a "{what}" string'
        )
    return password


def _password_of(value: Any, what: str) -> str:
    if not isinstance(value, str):
        return ""
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            return value  # a password that starts with "{"
        if isinstance(document, dict):
            password = document.get(what)
            return password if isinstance(password, str) else ""
    return value
