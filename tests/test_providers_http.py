"""The HTTP probe provider: 5xx and no answer are failed requests, latency from its clock."""

from __future__ import annotations

import math
import socket
import threading

import httpx
import pytest

from deploysim.providers import HttpProbeProvider, ProviderConfig, provider_for


def transport(codes: dict[str, list[int]]) -> httpx.MockTransport:
    """Each path answers its codes in turn, cycling; the host is the version."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def handle(request: httpx.Request) -> httpx.Response:
        with lock:
            i = seen.get(request.url.path, 0)
            seen[request.url.path] = i + 1
        answers = codes[request.url.path]
        return httpx.Response(answers[i % len(answers)])

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("codes", "errors"),
    [
        ([200], 0),
        ([404], 0),  # answered, by the application: not a failed request
        ([500], 8),
        ([503], 8),
        ([200, 500], 4),
        ([200, 200, 200, 502], 2),
    ],
)
def test_status_500_and_above_are_failed_requests(codes, errors) -> None:
    p = HttpProbeProvider({"candidate": "http://c/x"}, probes_per_measure=8, concurrency=1, bins=4,
                          client=httpx.Client(transport=transport({"/x": codes})))
    m = p.measure(100.0, 160.0)
    c = m.candidate
    assert m.error is None
    assert (c.requests, c.errors, c.seconds) == (8, errors, 60.0)
    assert c.error_rate == errors / 8
    assert c.series_requests == (2, 2, 2, 2) and sum(c.series_errors) == errors
    assert m.baseline.requests == 0  # no URL for the stable version: nothing measured


def test_latency_percentiles_are_of_the_answered_probes() -> None:
    # one probe at a time, each answered 10, 20, ..., 100 ms after it started
    ticks = iter([t for i in range(10) for t in (float(i), i + (i + 1) / 100)])
    p = HttpProbeProvider({"stable": "http://s/x"}, probes_per_measure=10, concurrency=1, bins=2,
                          client=httpx.Client(transport=transport({"/x": [200]})), clock=lambda: next(ticks))
    s = p.measure(0.0, 10.0).baseline
    # nearest rank: p50 the 5th smallest, p95 and p99 the 10th
    assert (s.latency_p50, s.latency_p95, s.latency_p99) == pytest.approx((50.0, 100.0, 100.0))
    assert s.series_latency_p99 == pytest.approx((50.0, 100.0))


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("[Errno 111] Connection refused"), httpx.ReadTimeout("timed out"),
     httpx.RemoteProtocolError("server disconnected")],
)
def test_no_answer_is_a_failed_request_without_latency(failure) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise failure

    p = HttpProbeProvider({"stable": "http://s/", "candidate": "http://c/"}, probes_per_measure=6,
                          client=httpx.Client(transport=httpx.MockTransport(handle)))
    m = p.measure(0.0, 10.0)
    for w in (m.baseline, m.candidate):
        assert (w.requests, w.errors) == (6, 6)
        assert math.isnan(w.latency_p99)


def test_a_closed_port_is_a_failed_request() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with HttpProbeProvider({"candidate": f"http://127.0.0.1:{port}/"}, probes_per_measure=3, timeout=1.0) as p:
        c = p.measure(0.0, 10.0).candidate
    assert (c.requests, c.errors) == (3, 3)


def test_only_the_two_versions_have_urls() -> None:
    with pytest.raises(ValueError, match=r"urls_by_version: got \['canary'\]; versions are \['stable', 'candidate'\]"):
        HttpProbeProvider({"canary": "http://c/"})


def test_built_from_its_configuration() -> None:
    p = provider_for(ProviderConfig("http", probe_urls={"stable": "http://s/", "candidate": "http://c/"},
                                    probes=7, timeout=0.5))
    assert isinstance(p, HttpProbeProvider)
    assert (p.urls, p.probes, p.timeout) == ({"stable": "http://s/", "candidate": "http://c/"}, 7, 0.5)
    p.close()
