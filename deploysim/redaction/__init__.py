"""Keep secrets out of everything a run writes or prints, by structure more than by name.

- :mod:`.spans`: places in a text, merged and replaced by ``[REDACTED]``;
- :mod:`.names`: which key, header, flag or parameter names hold a secret;
- :mod:`.urls`: a URL's password (whatever it holds) and secret query parameters;
- :mod:`.fields`: values under secret names, HTTP headers, flags, env entries;
- :mod:`.tokens`: vendors' token shapes, PEM private keys, JWTs, base64 hiding a secret;
- :mod:`.entropy`: random-looking tokens under any key or none;
- :mod:`.text`: all of them over one text; :mod:`.redactor`: one run's redaction;
- :mod:`.stream`: a stream (the CLI's stderr) redacted line by line.

:mod:`deploysim.redact` is the public face.
"""
