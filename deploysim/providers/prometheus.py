"""Prometheus as a metrics source: PromQL over ``httpx``.

The queries read the counters and histogram the ``deploysim traffic`` exporter serves
(``deploysim_requests_total``, ``deploysim_request_duration_seconds``), or any service
exposing the same names; a check on saturation, cpu or memory adds cAdvisor's series
(:mod:`deploysim.providers.saturation`). Transient failures (no connection, a timeout, HTTP 5xx or 429) are
asked again with exponential backoff through ``tenacity``; a bad query or a wrong URL is
answered once, since asking again gives the same answer.

>>> promql_requests("checkout", 60)
'sum by (version) (increase(deploysim_requests_total{service="checkout"}[60s]))'
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import tenacity

from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.errors import PrometheusError
from deploysim.providers.saturation import promql_resources, wants_resources, with_resources
from deploysim.providers.spec import QUANTILES, VERSIONS, ProviderConfig

REQUESTS_METRIC = "deploysim_requests_total"
DURATION_METRIC = "deploysim_request_duration_seconds"
#: A failed request answered 5xx (500 error, 503 shed or no ready endpoint).
ERROR_CODES = "5.."


# --- PromQL text ------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def matchers(service: str, namespace: str | None = None, **extra: str) -> str:
    """A label matcher list: ``{service="checkout",namespace="shop",code=~"5.."}``.

    A value starting with ``~`` is a regex match (``code="~5.."`` gives ``code=~"5.."``).
    """
    parts = [f'service="{_escape(service)}"']
    if namespace:
        parts.append(f'namespace="{_escape(namespace)}"')
    for key, value in extra.items():
        if value.startswith("~"):
            parts.append(f'{key}=~"{_escape(value[1:])}"')
        else:
            parts.append(f'{key}="{_escape(value)}"')
    return "{" + ",".join(parts) + "}"


def _range(seconds: float) -> str:
    """A PromQL range of whole seconds, at least 1s."""
    return f"[{max(1, round(seconds))}s]"


def promql_requests(service: str, window: float, namespace: str | None = None,
                    errors_only: bool = False) -> str:
    """Requests (or failed requests) per version over the last ``window`` seconds.

    >>> promql_requests("api", 30, "shop", errors_only=True)
    'sum by (version) (increase(deploysim_requests_total{service="api",namespace="shop",code=~"5.."}[30s]))'
    """
    extra = {"code": "~" + ERROR_CODES} if errors_only else {}
    sel = matchers(service, namespace, **extra)
    return f"sum by (version) (increase({REQUESTS_METRIC}{sel}{_range(window)}))"


def promql_quantile(service: str, q: float, window: float, namespace: str | None = None) -> str:
    """The ``q`` latency quantile per version (seconds) over the last ``window`` seconds.

    >>> promql_quantile("api", 0.99, 10)
    'histogram_quantile(0.99, sum by (version, le) (rate(deploysim_request_duration_seconds_bucket{service="api"}[10s])))'
    """
    sel = matchers(service, namespace)
    return (f"histogram_quantile({q:g}, sum by (version, le) "
            f"(rate({DURATION_METRIC}_bucket{sel}{_range(window)})))")


# --- the provider -----------------------------------------------------------------------------


class _Transient(PrometheusError):
    """An answer worth asking again for; its text is the cause a person reads (reported as
    a plain PrometheusError with the URL and the attempts once the retries are spent)."""


class PrometheusProvider:
    """Both versions' requests, failures and latency from Prometheus.

    Window totals are instant queries at ``time=end`` over ``[end - start]``; the per-bin
    series (``series_*``, what comparing judges read) are one range query per metric with
    ``step`` seconds per bin, each bin holding the ``step`` seconds before its timestamp.
    ``retries`` is how many times a transient failure is asked again, waiting ``backoff``
    seconds, then twice that, and so on (``sleep`` waits; tests pass their own).

    >>> p = PrometheusProvider("http://127.0.0.1:1", "checkout", timeout=0.2, retries=0)
    >>> p.measure(0, 60).error
    'prometheus at http://127.0.0.1:1: connection refused'
    """

    kind = "prometheus"

    def __init__(
        self,
        url: str,
        service: str,
        namespace: str | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        step: float = 10.0,
        backoff: float = 0.2,
        token: str | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if step <= 0:
            raise ValueError(f"step: got {step!r}; must be more than 0 seconds")
        if retries < 0:
            raise ValueError(f"retries: got {retries!r}; must be 0 or more")
        self.url = url.rstrip("/")
        self.service = service
        self.namespace = namespace
        self.timeout = timeout
        self.retries = retries
        self.step = step
        self.backoff = backoff
        self._sleep = sleep
        # a bearer token goes in a header only, never in a message
        self._headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        self._client = client or httpx.Client(timeout=timeout)
        self._own_client = client is None

    @classmethod
    def from_config(cls, config: ProviderConfig, world: Any = None) -> PrometheusProvider:
        timeout = {} if config.timeout is None else {"timeout": config.timeout}
        return cls(str(config.url), config.service, namespace=config.namespace, token=config.token,
                   step=config.step, **timeout)

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> PrometheusProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw API -----------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str]) -> Any:
        """``data`` of a Prometheus API answer, asking again on transient failures."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.backoff),
            retry=tenacity.retry_if_exception_type(_Transient),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._get_once, path, params)
        except _Transient as exc:
            tries = f" (after {self.retries + 1} attempts)" if self.retries else ""
            raise PrometheusError(f"prometheus at {self.url}: {exc}{tries}") from None

    def _get_once(self, path: str, params: dict[str, str]) -> Any:
        try:
            resp = self._client.get(f"{self.url}{path}", params=params, headers=self._headers,
                                    timeout=self.timeout)
        except httpx.TimeoutException:
            raise _Transient(f"no answer within {self.timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise _Transient(_connect_reason(exc)) from None
        except httpx.HTTPError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from None
        body = _json(resp)
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _Transient(f"HTTP {resp.status_code}{_api_error(body)}")
        if resp.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            # a bad query or a wrong URL: asking again gives the same answer
            raise PrometheusError(f"prometheus at {self.url}: HTTP {resp.status_code}{_api_error(body)}")
        return body.get("data")

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query: the ``result`` list (``metric`` labels and ``value``)."""
        data = self.query_data(promql, at)
        return list(data.get("result", [])) if isinstance(data, dict) else []

    def query_data(self, promql: str, at: float | None = None) -> Any:
        """An instant query's whole ``data`` (``resultType`` and ``result``), as a team
        metric's verdict reads it; raises :class:`~deploysim.errors.PrometheusError`."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("/api/v1/query", params)

    def query_range(self, promql: str, start: float, end: float, step: float | None = None) -> list[dict[str, Any]]:
        """A range query: the ``result`` list (``metric`` labels and ``values``)."""
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
                  "step": f"{step or self.step:g}s"}
        data = self._get("/api/v1/query_range", params)
        return list(data.get("result", [])) if isinstance(data, dict) else []

    # -- the measurement ---------------------------------------------------------------------

    def measure(self, start: float, end: float, spec: Any = None) -> Measurement:
        """The standard window over ``[start, end]`` (epoch seconds); a failure is the
        measurement's ``error``, never an exception. Team metrics in ``spec`` are run by
        :mod:`deploysim.providers.evaluate`, not here. A check on saturation, cpu or memory
        adds their queries (:mod:`deploysim.providers.saturation`)."""
        try:
            return self._measure(start, end, spec)
        except PrometheusError as exc:
            return Measurement(start, end, error=str(exc))

    def _measure(self, start: float, end: float, spec: Any = None) -> Measurement:
        window = end - start
        if window <= 0:
            raise PrometheusError(f"prometheus at {self.url}: empty window [{start}, {end}]")
        svc, ns = self.service, self.namespace
        requests = _by_version(self.query(promql_requests(svc, window, ns), at=end))
        if not requests:
            raise PrometheusError(
                f"prometheus at {self.url}: no {REQUESTS_METRIC} series for service {svc!r}"
                f"{f' in namespace {ns!r}' if ns else ''} over [{start:.0f}, {end:.0f}]"
                " (is the traffic exporter scraped?)"
            )
        errors = _by_version(self.query(promql_requests(svc, window, ns, errors_only=True), at=end))
        quantiles = {q: _by_version(self.query(promql_quantile(svc, q, window, ns), at=end))
                     for q in QUANTILES}
        # bins: timestamps start+step, ..., each covering the step seconds before it
        step = min(self.step, window)
        bins = max(1, int(math.floor(window / step + 1e-9)))
        times = [start + step * (i + 1) for i in range(bins)]
        last = times[-1]
        s_req = self._series(promql_requests(svc, step, ns), times[0], last, step)
        s_err = self._series(promql_requests(svc, step, ns, errors_only=True), times[0], last, step)
        s_p99 = self._series(promql_quantile(svc, 0.99, step, ns), times[0], last, step)
        versions = {}
        for v in VERSIONS:
            versions[v] = VersionWindow(
                requests=_count(requests.get(v, 0.0)),
                errors=_count(errors.get(v, 0.0)),
                latency_p50=_ms(quantiles[0.50].get(v)),
                latency_p95=_ms(quantiles[0.95].get(v)),
                latency_p99=_ms(quantiles[0.99].get(v)),
                seconds=window,
                series_requests=tuple(_count(s_req.get(v, {}).get(t, 0.0)) for t in times),
                series_errors=tuple(_count(s_err.get(v, {}).get(t, 0.0)) for t in times),
                series_latency_p99=tuple(_ms(s_p99.get(v, {}).get(t)) for t in times),
            )
        if wants_resources(spec):
            queries = promql_resources(matchers(svc, ns), ns, _range(window))
            versions = with_resources(versions, {m: _by_version(self.query(q, at=end)) for m, q in queries.items()})
        return Measurement(start, end, versions)

    def _series(self, promql: str, first: float, last: float, step: float) -> dict[str, dict[float, float]]:
        """version -> {bin timestamp -> value}, timestamps matched to the grid within 1 ms."""
        out: dict[str, dict[float, float]] = {}
        grid = [first + step * i for i in range(int(round((last - first) / step)) + 1)]
        for item in self.query_range(promql, first, last, step):
            version = item.get("metric", {}).get("version", "")
            values = out.setdefault(version, {})
            for ts, raw in item.get("values", []):
                ts = float(ts)
                nearest = min(grid, key=lambda g: abs(g - ts))
                if abs(nearest - ts) < 1e-3:
                    values[nearest] = values.get(nearest, 0.0) + _float(raw)
        return out


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _api_error(body: Any) -> str:
    if isinstance(body, dict) and body.get("error"):
        return f" {body.get('errorType', 'error')}: {body['error']}"
    return ""


def _connect_reason(exc: httpx.ConnectError) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    return f"cannot connect ({text})"


def _float(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


def _by_version(result: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in result:
        version = item.get("metric", {}).get("version", "")
        value = item.get("value") or [0, "NaN"]
        out[version] = _float(value[1])
    return out


def _count(x: float) -> int:
    """A request count from ``increase()``, which extrapolates to fractions."""
    return 0 if math.isnan(x) or x < 0 else int(round(x))


def _ms(seconds: float | None) -> float:
    if seconds is None or math.isnan(seconds) or math.isinf(seconds):
        return math.nan
    return seconds * 1000.0
