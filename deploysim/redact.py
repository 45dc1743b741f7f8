"""Keep secrets out of the audit trail and the terminal: tokens, passwords, headers, keys.

Redaction is on by default for everything a run writes (record.json, the executed notebook,
its HTML copy, papermill's own notebook) and for what ``deploysim`` prints on stderr. It
goes by structure, not by key name alone (:mod:`deploysim.redaction` holds the pieces):

1. by place: a URL's password whatever it holds (``http://u:a/b@h/``, ``redis://:pw@h``), a
   secret query parameter (``?access_token=``, ``X-Amz-Signature=``), a header's credential
   (``Authorization: Basic ...``, ``X-Api-Key``, ``Cookie``), the value under a name that
   names a secret (``prometheus_token``, ``password``, ``client-key-data``), a flag's value;
2. by shape: vendors' tokens (GitHub, GitLab, Slack, Stripe, AWS, Google, npm, PyPI, OpenAI,
   SendGrid, Twilio ...), PEM private keys, JWTs, base64 that decodes to a secret;
3. by look: a long random-looking token, under any key or none;
4. by value: every secret found in a run's parameters is replaced wherever it appears again,
   e.g. echoed alone in a cell's output or a traceback.

>>> redact_text("curl -H 'Authorization: Bearer abc.def.ghi' https://x")
"curl -H 'Authorization: Bearer [REDACTED]' https://x"
>>> redact_text("postgres://app:hunter2@db:5432/app")
'postgres://app:[REDACTED]@db:5432/app'
>>> r = Redactor.from_parameters({"prometheus_token": "s3cr3t-value", "namespace": "prod"})
>>> r.text("token was s3cr3t-value"), r.data({"prometheus_token": "s3cr3t-value"})
('token was [REDACTED]', {'prometheus_token': '[REDACTED]'})
"""

from __future__ import annotations

from deploysim.redaction.entropy import entropy, looks_random
from deploysim.redaction.names import is_secret_name
from deploysim.redaction.redactor import BINARY_MIMETYPES, MIN_LITERAL, Redactor, encodings
from deploysim.redaction.spans import REDACTED
from deploysim.redaction.text import excerpt_text, find_secrets, redact_text, secret_spans

__all__ = [
    "BINARY_MIMETYPES",
    "MIN_LITERAL",
    "REDACTED",
    "Redactor",
    "encodings",
    "entropy",
    "excerpt_text",
    "find_secrets",
    "is_secret_name",
    "looks_random",
    "redact_text",
    "secret_spans",
]
