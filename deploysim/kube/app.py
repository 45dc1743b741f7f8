"""A service's workloads as :mod:`deploysim.kube.naming` expects them, for trying a runbook
on a local cluster and for the end-to-end tests.

``create_app`` makes the namespace, the Deployment(s), Services and (with a router) the
HTTPRoute for one strategy, with the stable image serving, and waits until it is ready.
"""

from __future__ import annotations

import time

from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.errors import ClusterError
from deploysim.kube import naming as n


def _deployment(
    name: str,
    labels: dict[str, str],
    replicas: int,
    image: str,
    annotations: dict[str, str] | None = None,
) -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations or {}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image=image)]),
            ),
        ),
    )


def _service(
    name: str, selector: dict[str, str], annotations: dict[str, str] | None = None
) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations or {}),
        spec=client.V1ServiceSpec(
            selector=selector, ports=[client.V1ServicePort(port=80, target_port=8080)]
        ),
    )


def _ingress(name: str, backend: str) -> dict:
    """An Ingress with one path, ``/`` (Prefix), to Service ``backend`` port 80."""
    path = {"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": backend, "port": {"number": 80}}}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"rules": [{"http": {"paths": [path]}}]}}


def _create(fn, *args) -> None:  # noqa: ANN001
    try:
        fn(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise


def create_app(
    api: client.ApiClient,
    namespace: str,
    service: str,
    strategy: str,
    replicas: int,
    image: str,
    router: bool = False,
    pod_annotations: dict[str, str] | None = None,
    timeout: float = 120.0,
    workload: str | None = None,
    second_workload: str | None = None,
    route_name: str | None = None,
    ingress: bool = False,
) -> None:
    """Create the workloads for ``strategy`` with ``image`` serving, and wait for them.

    The Deployments are named after the service unless ``workload`` (rolling: the
    Deployment; two colours: the blue one) and ``second_workload`` (the green one) name them,
    and the HTTPRoute after the service unless ``route_name`` does, as a runbook's
    ``workload``, ``candidate_workload`` and ``route`` parameters say. With ``ingress`` (two
    colours) the colours' Services and a stable Ingress named like the route, its one path
    to the stable colour's Service port 80, are made for the NGINX Ingress router.
    """
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    _create(core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    ann = {
        "deploysim.io/ready-delay": "1s",
        "deploysim.io/ready-jitter": "0s",
        **(pod_annotations or {}),
    }
    if strategy in ("rolling", "recreate"):
        _create(
            apps.create_namespaced_deployment,
            namespace,
            _deployment(workload or service, n.selector(service), replicas, image, ann),
        )
        _create(core.create_namespaced_service, namespace, _service(service, n.selector(service)))
        names = [workload or service]
    else:
        stable = n.SLOTS[0]

        def colour(slot: str) -> str:
            if workload and second_workload:
                return workload if slot == n.SLOTS[0] else second_workload
            return n.slot_deployment(workload or service, slot)

        for slot in n.SLOTS:
            _create(
                apps.create_namespaced_deployment,
                namespace,
                _deployment(
                    colour(slot),
                    n.selector(service, slot),
                    replicas if slot == stable else 0,
                    image,
                    ann,
                ),
            )
        main_selector = (
            n.selector(service, stable) if strategy == "blue-green" else n.selector(service)
        )
        _create(
            core.create_namespaced_service,
            namespace,
            _service(service, main_selector, {n.STABLE_SLOT_ANNOTATION: stable}),
        )
        if strategy == "blue-green":
            _create(
                core.create_namespaced_service,
                namespace,
                _service(n.preview_service(service), n.selector(service, n.other_slot(stable))),
            )
        if router or ingress:
            for slot in n.SLOTS:
                _create(
                    core.create_namespaced_service,
                    namespace,
                    _service(n.slot_service(service, slot), n.selector(service, slot)),
                )
        if ingress:
            _create(
                client.NetworkingV1Api(api).create_namespaced_ingress,
                namespace,
                _ingress(route_name or service, n.slot_service(service, stable)),
            )
        if router:
            route = {
                "apiVersion": f"{n.HTTPROUTE_GROUP}/{n.HTTPROUTE_VERSION}",
                "kind": "HTTPRoute",
                "metadata": {"name": route_name or service},
                "spec": {
                    "rules": [
                        {
                            "backendRefs": [
                                {
                                    "name": n.slot_service(service, s),
                                    "port": 80,
                                    "weight": 100 if s == stable else 0,
                                }
                                for s in n.SLOTS
                            ]
                        }
                    ]
                },
            }
            _create(
                client.CustomObjectsApi(api).create_namespaced_custom_object,
                n.HTTPROUTE_GROUP,
                n.HTTPROUTE_VERSION,
                namespace,
                n.HTTPROUTE_PLURAL,
                route,
            )
        names = [colour(stable)]
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            d = apps.read_namespaced_deployment(name, namespace)
            if (d.status.available_replicas or 0) == replicas and (
                d.status.updated_replicas or 0
            ) == replicas:
                break
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"Deployment {namespace}/{name} did not become available in {timeout:g} s"
                )
            time.sleep(0.5)


def delete_namespace(api: client.ApiClient, namespace: str) -> None:
    try:
        client.CoreV1Api(api).delete_namespace(namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


def apply_rbac(api: client.ApiClient, namespace: str, path: str) -> None:
    """Create the ServiceAccount, Role and RoleBinding of ``deploy/rbac.yaml`` in ``namespace``."""
    import yaml

    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    for doc in yaml.safe_load_all(open(path).read()):  # noqa: SIM115
        kind = doc["kind"]
        if kind == "ServiceAccount":
            _create(core.create_namespaced_service_account, namespace, doc)
        elif kind == "Role":
            _create(rbac.create_namespaced_role, namespace, doc)
        elif kind == "RoleBinding":
            doc = {**doc, "subjects": [{**s, "namespace": namespace} for s in doc["subjects"]]}
            _create(rbac.create_namespaced_role_binding, namespace, doc)
        else:
            raise ClusterError(f"{path}: unexpected kind {kind}")


def service_account_kubeconfig(
    api: client.ApiClient, namespace: str, account: str, admin_kubeconfig: str, out: str,
    context: str = "deploysim-runbook",
) -> str:
    """A kubeconfig that acts as ``namespace/account`` (a short-lived token), for least-privilege runs."""
    import yaml

    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))).status.token
    admin = yaml.safe_load(open(admin_kubeconfig).read())  # noqa: SIM115
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "cluster", "user": account, "namespace": namespace}}],
    }
    with open(out, "w") as fh:
        yaml.safe_dump(config, fh)
    return out
