"""Names that hold a secret: a key, a parameter, a header, a query parameter, a flag.

A name is split into words (``prometheus_token`` → prometheus, token; ``X-Amz-Signature`` →
x, amz, signature; ``AccountKey`` → account, key) and is a secret's name when a word is one
(``token``, ``password``, ``secret`` ...; also glued: ``PGPASSWORD``, ``apikey``) or two words
make one (``api key``, ``access key``, ``client key``, ``session id``). Words, not substrings:
``tokenizer``, ``max_tokens``, ``secretary`` and ``keyboard`` are ordinary names. A last word
that says the value only points at a secret (``secret_name``, ``token_url``, ``password_file``,
``secretKeyRef``, ``token_type``) makes the name ordinary again.

>>> [is_secret_name(n) for n in ("prometheus_token", "client-key-data", "X-Api-Key", "AccountKey")]
[True, True, True, True]
>>> [is_secret_name(n) for n in ("tokenizer", "max_tokens", "secret_name", "keyboard", "namespace")]
[False, False, False, False, False]
"""

from __future__ import annotations

import re

# one word is enough
_SECRET_WORDS = frozenset({
    "password", "passwd", "passphrase", "passcode", "pass", "pwd", "secret", "secrets", "token",
    "apikey", "credential", "credentials", "authorization", "auth", "bearer", "cookie", "signature",
    "privatekey", "dsn", "sessionid", "sessiontoken", "connectionstring", "sas", "otp",
})
# glued words ending so (PGPASSWORD, MYSQL_PWD's pwd is a word already, AUTHTOKEN, clientSecret)
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "secretkey",
                    "privatekey", "credential", "credentials", "sessionid")
# two words that make one: api key, access key, client key, session id ...
_KEY_OWNERS = frozenset({
    "api", "access", "secret", "private", "client", "account", "shared", "signing", "encryption", "master",
    "license", "service", "app", "auth", "session", "ssh", "gpg", "pgp", "deploy", "webhook", "storage",
    "subscription", "primary", "secondary", "consumer", "hmac", "crypt",
})
_PAIRS = frozenset({("session", "id"), ("connection", "string")})
# a last word saying the value names, locates or describes a secret
_POINTERS = frozenset({
    "name", "names", "file", "files", "path", "paths", "dir", "ref", "refs", "url", "uri", "endpoint", "type",
    "types", "kind", "count", "length", "len", "ttl", "expiry", "expires", "expiration", "expired", "env",
    "field", "fields", "header", "prefix", "format", "source", "sources", "mount", "provider", "policy",
    "selector", "label", "labels", "template", "version", "rotation", "reset", "hint", "enabled",
    "required", "mode", "method", "scheme", "store", "manager", "volume",
})
_SHELL_NAMES = frozenset({"PWD", "OLDPWD"})  # the working directory, not a password

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def name_words(name: str) -> list[str]:
    """The lower-case words of a key name.

    >>> name_words("X-Amz-Signature"), name_words("clientSecretKeyRef"), name_words("PGPASSWORD")
    (['x', 'amz', 'signature'], ['client', 'secret', 'key', 'ref'], ['pgpassword'])
    """
    return [w.lower() for w in _WORDS.findall(name)]


def is_secret_name(name: str) -> bool:
    """True for a key or parameter name whose value is a secret.

    >>> is_secret_name("aws_secret_access_key"), is_secret_name("PGPASSWORD"), is_secret_name("token_url")
    (True, True, False)
    """
    if name.strip() in _SHELL_NAMES:
        return False
    words = name_words(name)
    if not words or words[-1] in _POINTERS:
        return False
    for i, word in enumerate(words):
        if word in _SECRET_WORDS or word.endswith(_SECRET_SUFFIXES):
            return True
        if i and ((words[i - 1], word) in _PAIRS or (word in ("key", "keys") and words[i - 1] in _KEY_OWNERS)):
            return True
    return False
