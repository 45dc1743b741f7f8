"""deploysim.analysis.templating: Argo's args and Flagger's MetricTemplate rendering, case by case.

Cases marked with a Go test name reproduce that test's inputs and expected output.
"""

from __future__ import annotations

import pytest

from deploysim.analysis.templating import (
    Arg,
    FlaggerModel,
    TemplateError,
    args_in,
    field_value,
    flagger_model,
    flatten_args,
    merge_args,
    metric_interval,
    redact,
    render_flagger,
    render_flagger_query,
    resolve_args,
    substitute_args,
    trim_query,
)
from deploysim.redact import REDACTED


def no_secret(name: str, key: str) -> str:
    raise AssertionError(f"secret {name}/{key} read")


def no_field(path: str) -> str:
    raise AssertionError(f"field {path} read")


# --- Argo: substitution (utils/template/template_test.go) -------------------------------------


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("test", {}, "test"),  # TestResolveArgsWithNoSubstitution
        ("test-{{args.var}}", {"var": "foo"}, "test-foo"),  # TestResolveArgsWithSubstitution
        ("test-{{ args.var }}", {"var": "foo"}, "test-foo"),  # TestResolveArgsRemoveWhiteSpace
        # TestResolveQuotedArgs: quoting is undone by the JSON round trip; the query gets the raw value
        ("test-{{args.var}}", {"var": 'double quotes"newline\nand tab\t'}, 'test-double quotes"newline\nand tab\t'),
        # factory_test.go TestResolveMetricArgs / TestResolveMetricArgsWithQuotes
        ("result > {{args.metric-name}}", {"metric-name": "success-rate"}, "result > success-rate"),
        ("{{args.rate}}", {"rate": 'foo "bar" baz'}, 'foo "bar" baz'),
        ("{{args.a}}{{args.a}}-{{\targs.b\n}}", {"a": "x", "b": "y"}, "xx-y"),
    ],
)
def test_substitute_args(text: str, values: dict[str, str], expected: str) -> None:
    assert substitute_args(text, values) == expected


def test_a_missing_arg_is_named() -> None:  # TestMissingArgs: "failed to resolve {{args.var}}"
    with pytest.raises(TemplateError, match=r"\{\{args\.var\}\}: no such argument; the template's args are: other"):
        substitute_args("test-{{args.var}}", {"other": "1"})


def test_a_placeholder_that_is_not_an_arg_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"\{\{ \.Values\.ns \}\}: not an argument"):
        substitute_args('x{ns="{{ .Values.ns }}"}', {"ns": "prod"})
    with pytest.raises(TemplateError, match=r"\{\{args\. var\}\}"):  # a space inside the name is not trimmed
        substitute_args("{{args. var}}", {"var": "foo"})


def test_an_unclosed_placeholder_is_an_error() -> None:  # TestInvalidTemplate
    with pytest.raises(TemplateError, match="unclosed placeholder at character 5"):
        substitute_args("test-{{args.var", {"var": "foo"})


def test_args_in_lists_the_names_a_query_uses() -> None:
    assert args_in('a{x="{{args.service-name}}",y="{{ args.namespace }}"} {{args.service-name}}') == {
        "service-name", "namespace"}
    assert args_in("no placeholders") == set()


# --- Argo: merging and flattening (utils/analysis/helpers_test.go) -----------------------------


def test_merge_args_uses_defaults() -> None:  # TestMergeArgs "use defaults"
    merged = merge_args([Arg("foo", "bar"), Arg("my-secret", secret=("name", "key"))], [])
    assert merged == [Arg("foo", "bar"), Arg("my-secret", secret=("name", "key"))]


def test_merge_args_overwrites_defaults_and_drops_extra_args() -> None:  # "overwrite defaults", "extra arg"
    assert merge_args([Arg("foo", "bar")], [Arg("foo", "overwrite")]) == [Arg("foo", "overwrite")]
    assert merge_args([Arg("foo")], [Arg("foo", "my-value"), Arg("extra-arg", "extra-value")]) == [
        Arg("foo", "my-value")]


def test_merge_args_with_an_unresolved_arg_names_it() -> None:  # "not resolved": args.foo was not resolved
    with pytest.raises(TemplateError, match=r"^args\.service-name: no value; give it in the Rollout's analysis args$"):
        merge_args([Arg("foo", "1"), Arg("service-name")], [Arg("foo", "2")])


def test_merge_args_takes_the_rollouts_value_from() -> None:
    merged = merge_args([Arg("app"), Arg("hash"), Arg("empty", "default")],
                        [Arg("app", field_path="metadata.labels['app']"), Arg("hash", pod_template_hash="Latest"),
                         Arg("empty")])
    assert merged == [Arg("app", field_path="metadata.labels['app']"), Arg("hash", pod_template_hash="Latest"),
                      Arg("empty", "")]  # BuildArgumentsForRolloutAnalysisRun gives an empty value


def test_a_templates_secret_survives_a_rollout_value_and_wins() -> None:
    merged = merge_args([Arg("token", secret=("prom", "token"))], [Arg("token", "literal")])
    values, secrets = resolve_args(merged, read_secret=lambda n, k: "from-secret", read_field=no_field)
    assert values == {"token": "from-secret"} and secrets == {"from-secret"}


def test_where_each_valuefrom_may_appear() -> None:
    with pytest.raises(TemplateError, match=r"args\.token: valueFrom\.secretKeyRef is read only from the template"):
        merge_args([Arg("token")], [Arg("token", secret=("prom", "token"))])
    with pytest.raises(TemplateError, match=r"args\.app: valueFrom\.fieldRef 'metadata\.name' in a template"):
        merge_args([Arg("app", field_path="metadata.name")], [])


def test_flatten_args() -> None:  # TestFlattenTemplates, the three args cases
    foo, bar = Arg("foo", "true"), Arg("bar", "true")
    assert flatten_args([[foo], [bar]]) == [foo, bar]
    assert flatten_args([[foo], [Arg("foo")]]) == [foo]
    assert flatten_args([[Arg("foo")], [foo]]) == [foo]
    with pytest.raises(TemplateError, match=r"args\.foo: declared twice with different values \('true', 'false'\)"):
        flatten_args([[foo], [Arg("foo", "false")]])


# --- Argo: resolving values, secrets and redaction --------------------------------------------


def test_resolve_args_reads_each_source() -> None:
    args = [Arg("a", "1"), Arg("b", field_path="metadata.name"), Arg("c", pod_template_hash="Stable"),
            Arg("d", secret=("creds", "password"))]
    values, secrets = resolve_args(
        args, read_secret=lambda n, k: f"{n}:{k}:pw", read_field=lambda p: f"<{p}>",
        read_hash=lambda which: {"Stable": "abcdef", "Latest": "123456"}[which])
    assert values == {"a": "1", "b": "<metadata.name>", "c": "abcdef", "d": "creds:password:pw"}
    assert secrets == {"creds:password:pw"}


def test_resolve_args_errors_name_the_arg_and_never_the_secret() -> None:
    def missing(name: str, key: str) -> str:
        raise KeyError(key)

    with pytest.raises(TemplateError, match=r"args\.d: key 'password' does not exist in secret 'creds'"):
        resolve_args([Arg("d", secret=("creds", "password"))], read_secret=missing, read_field=no_field)
    with pytest.raises(TemplateError, match=r"^args\.x: no value"):
        resolve_args([Arg("x")], read_secret=no_secret, read_field=no_field)
    with pytest.raises(TemplateError, match=r"podTemplateHashValue is 'Newest'; allowed: Stable, Latest"):
        resolve_args([Arg("h", pod_template_hash="Newest")], read_secret=no_secret, read_field=no_field,
                     read_hash=lambda w: "x")
    with pytest.raises(TemplateError, match="needs the ReplicaSets' pod-template-hash"):
        resolve_args([Arg("h", pod_template_hash="Stable")], read_secret=no_secret, read_field=no_field)


def test_a_secret_never_leaks_from_a_filled_query() -> None:
    secret = "tok-" + "9f8e7d"
    args = merge_args([Arg("token", secret=("prom", "token")), Arg("svc")], [Arg("svc", "checkout")])
    values, secrets = resolve_args(args, read_secret=lambda n, k: secret, read_field=no_field)
    query = substitute_args('up{svc="{{args.svc}}",auth="{{args.token}}"} and {{args.token}}', values)
    assert secret in query  # the query itself must carry it to Prometheus
    shown = redact(f"query failed: {query}", secrets)
    assert secret not in shown and shown.count(REDACTED) == 2 and 'svc="checkout"' in shown


def test_redact_replaces_longer_secrets_first_and_ignores_empty_ones() -> None:
    assert redact("abc abcdef", {"abc", "abcdef", ""}) == f"{REDACTED} {REDACTED}"
    assert redact("nothing here", set()) == "nothing here"


# --- Argo: fieldRef (utils/analysis/factory_test.go, k8s fieldpath) ---------------------------

ROLLOUT = {
    "metadata": {"name": "test", "namespace": "default", "uid": "u-1",
                 "annotations": {"rollout.argoproj.io/revision": "1"}, "labels": {"app": "app", "env": "test"}},
    "spec": {"replicas": 1, "strategy": {"canary": {"steps": [{"setWeight": 20}]}}},
    "status": {"pauseConditions": [{"reason": "test-reason"}]},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [  # TestBuildArgumentsForRolloutAnalysisRun
        ("metadata.labels['app']", "app"),
        ("metadata.labels['env']", "test"),
        ("metadata.annotations['rollout.argoproj.io/revision']", "1"),
        ("status.pauseConditions[0].reason", "test-reason"),
        ("metadata.name", "test"),
        ("metadata.namespace", "default"),
        ("metadata.uid", "u-1"),
        ("metadata.labels", 'app="app"\nenv="test"'),  # FormatMap: sorted key="quoted value" lines
        ("metadata.labels['missing']", ""),
        ("spec.replicas", "1"),
        ("spec.strategy.canary.steps[0].setWeight", "20"),
    ],
)
def test_field_value(path: str, expected: str) -> None:
    assert field_value(ROLLOUT, path) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [  # Test_extractValueFromRollout's error cases, and fieldpath's
        ("status.pauseConditions[blah].reason", "invalid index 'blah'"),
        ("status.pauseConditions[12].reason", "index 12 out of range"),
        ("status.pauseConditions[0].startTime", "invalid path in rollout"),
        ("some.invalid[2].non.existing.path", "invalid path in rollout"),
        ("status.pauseConditions[0]", "must end at a primitive value"),
        ("metadata.labels.app", "unsupported fieldPath"),  # metadata paths go through k8s fieldpath
        ("metadata.generation", "unsupported fieldPath"),
        ("metadata.name['x']", "does not support a subscript"),
        ("metadata.labels['a/b/c']", "invalid key subscript"),
        ("metadata.labels['-bad']", "invalid key subscript"),
    ],
)
def test_field_value_errors_name_the_path(path: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        field_value(ROLLOUT, path)
    assert str(err.value).startswith(f"fieldRef {path!r}: ") and message in str(err.value)


def test_field_value_prints_numbers_as_go_does() -> None:
    obj = {"spec": {"big": 1000000, "half": 0.5, "on": True, "tiny": 0.00001}}
    assert [field_value(obj, f"spec.{k}") for k in ("big", "half", "on", "tiny")] == ["1e+06", "0.5", "true", "1e-05"]


# --- Flagger: MetricTemplate rendering (observers/render_test.go) ------------------------------


def model(**kw: object) -> FlaggerModel:
    base: dict = {"name": "standard", "namespace": "default", "target": "myapp", "service": "myapp",
                  "ingress": "myapp", "route": "myapp", "interval": "1m", "variables": None}
    base.update(kw)
    return FlaggerModel(**base)


def test_render_ok_without_variables() -> None:  # Test_RenderQuery ok_without_variables
    query = 'sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ target }}"})'
    assert render_flagger(query, model()) == 'sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"default_myapp"})'


KAFKA = ('delta(max by (consumer_group) (kafka_consumer_current_offset{cluster="{{ variables.cluster }}", '
         'consumer_group="{{ variables.consumer_group }}"}[{{ interval }}]))')


def test_render_ok_with_variables() -> None:  # Test_RenderQuery ok_with_variables
    m = model(name="kafka_consumer_offset", variables={"cluster": "dev", "consumer_group": "my_consumer"})
    assert render_flagger(KAFKA, m) == ('delta(max by (consumer_group) (kafka_consumer_current_offset{cluster="dev", '
                                        'consumer_group="my_consumer"}[1m]))')


def test_render_missing_variable_key_is_an_error() -> None:  # Test_RenderQuery missing_variable_key
    m = model(variables={"invalid": "dev", "consumer_group": "my_consumer"})
    with pytest.raises(TemplateError, match=r"variables\.cluster \}\}: the metric's templateVariables have no "
                                            r"'cluster'; they give: consumer_group, invalid"):
        render_flagger(KAFKA, m)
    with pytest.raises(TemplateError, match="they give: \\(none\\)"):
        render_flagger("{{ variables.cluster }}", model())


def test_every_model_function_renders() -> None:
    m = FlaggerModel("n", "ns", "t", "s", "i", "r", "30s", {"k": "v"})
    text = "{{name}}|{{ namespace }}|{{target}}|{{ service }}|{{ ingress }}|{{ route }}|{{ interval }}|{{ variables.k }}"
    assert render_flagger(text, m) == "n|ns|t|s|i|r|30s|v"
    assert render_flagger('{{ index variables "k" }}|{{ index variables "nope" }}|{{ variables }}', m) == "v||map[k:v]"


def test_go_template_trim_markers_and_comments() -> None:
    m = model()
    assert render_flagger("a  \n {{- namespace -}} \n  b", m) == "adefaultb"
    assert render_flagger("a {{/* a comment */}}b", m) == "a b"
    with pytest.raises(TemplateError, match="an action not rendered here"):  # "{{-3}}" is Go's number -3, no trim
        render_flagger("{{-3}}", m)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ .Namespace }}", "a field like .Namespace fails"),
        ("{{ targetName }}", "unknown placeholder"),
        ("{{ printf \"%s\" target }}", "an action not rendered here"),
        ("{{ variables.cluster.name }}", "has no field 'name'"),
        ("x{{ target", "unclosed action"),
    ],
)
def test_unknown_flagger_placeholders_are_named(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message) as err:
        render_flagger(text, model(variables={"cluster": "dev"}))
    if message.startswith(("a field", "unknown", "an action")):
        assert "{{ namespace }}" in str(err.value)  # and the message lists what is allowed


def test_render_flagger_query_takes_the_model_by_keyword() -> None:
    assert render_flagger_query("{{ ingress }}/{{ route }}", name="n", namespace="ns", target="t", service="s",
                                ingress="ing", route="rt", interval="1m") == "ing/rt"


def test_flagger_model_follows_to_metric_model() -> None:
    canary = {"metadata": {"name": "podinfo", "namespace": "test"},
              "spec": {"targetRef": {"kind": "Deployment", "name": "podinfo-deploy"},
                       "service": {"name": "podinfo-svc", "port": 80},
                       "ingressRef": {"name": "podinfo-ing"}, "routeRef": {"name": "podinfo-route"}}}
    m = flagger_model(canary, "2m", {"a": "b"})
    assert m == FlaggerModel("podinfo", "test", "podinfo-deploy", "podinfo-svc", "podinfo-ing", "podinfo-route",
                             "2m", {"a": "b"})
    bare = flagger_model({"metadata": {"name": "c"}, "spec": {"targetRef": {"name": "app"}}}, "1m")
    assert (bare.namespace, bare.service, bare.ingress, bare.route, bare.variables) == (
        "default", "app", "app", "app", None)


def test_metric_interval_defaults_only_for_builtins() -> None:
    assert metric_interval({"name": "request-success-rate"}, builtin=True) == "1m"
    assert metric_interval({"name": "custom", "templateRef": {"name": "t"}}, builtin=False) == ""
    assert metric_interval({"interval": "5m"}, builtin=True) == "5m"


def test_trim_query_collapses_whitespace_as_flagger_sends_it() -> None:
    assert trim_query("\n\tsum(\n\t\trate(x{a=\"b\"}[1m])\n\t) \n\t/ \n\t2") == ' sum( rate(x{a="b"}[1m]) ) / 2'
    assert trim_query("a\f\rb") == "a b"
