#!/usr/bin/python3
"""Checks the Kubernetes manifests in deploy/ and the propeller snippet.

    tests/packaging/check-manifests.py [--no-self-test]

Parses every YAML file under deploy/, renders deploy/base with
`kubectl kustomize` (falls back to the raw files, with a message, when kubectl
is absent) and checks what production needs: two replicas with gRPC probes,
small resource bounds, a non-root, read-only, capability-free container, the
token from the Secret as a file (mode 0400, read-only mount, the config's
token_file; never an environment variable), the config from the ConfigMap, a
grace period above the daemon's, a headless gRPC Service, a PodDisruptionBudget,
Prometheus scrape annotations, a NetworkPolicy admitting port 8000 only from
propeller's pods and 9090 only from the monitoring namespace; that the
ConfigMap's config passes the daemon's --check-config (when the binary is
built); that per-namespace tokens are off in the base and
deploy/overlays/namespace-tokens turns them on with the least RBAC (a
ClusterRole with only "get" on secrets, bound to the pod's ServiceAccount,
whose token is mounted); and that deploy/propeller/connector-service.yaml
routes spark and databricks tasks to that Service under the key names
flytepropeller reads. The self-test breaks a copy of the rendered objects one
property at a time and expects the matching check to fail. Prints "ok NAME" /
"FAIL NAME: reason" and "N passed, N failed"; exits 1 on any failure.
Needs python3-yaml.
"""

import base64
import copy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("FAIL manifests-yaml-module: python3-yaml is not installed (apt-get install python3-yaml)")
    print("0 passed, 1 failed")
    sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(ROOT, "deploy")
BASE = os.path.join(DEPLOY, "base")
PROPELLER = os.path.join(DEPLOY, "propeller", "connector-service.yaml")
NS_TOKENS_OVERLAY = os.path.join(DEPLOY, "overlays", "namespace-tokens")
NS_TOKENS_COMPONENT = os.path.join(DEPLOY, "components", "namespace-tokens")
RBAC_KINDS = ("ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

GRPC_PORT = 8000
METRICS_PORT = 9090
DAEMON_GRACE_SECONDS = 10
UID = 65532
TOKEN_ENV = "FLYTE_DATABRICKS_ACCESS_TOKEN"
TOKEN_PLACEHOLDER = "REPLACE-WITH-DATABRICKS-TOKEN"
TOKEN_MODE = 0o400
# Keys the daemon's config parser accepts (config/README.md); any other is fatal.
CONFIG_KEYS = {
    "allowed_instances", "ca_file", "connect_timeout_ms", "default_instance", "listen",
    "log_level", "max_response_bytes", "request_timeout_ms", "service_credential_provider",
    "token_file", "workers", "idempotency_key_file", "tls_cert_file", "tls_key_file",
    "tls_client_ca_file", "log_format", "metrics_listen", "shutdown_delay_ms",
    "shutdown_grace_ms", "max_calls_in_flight", "instance_rate_limit_rps",
    "instance_max_concurrent_requests", "instance_limits", "max_tracked_runs",
    "status_cache_ttl_ms", "terminal_cache_ttl_ms",
}
# Who may call the connector (deploy/base/networkpolicy.yaml).
PROPELLER_POD_LABEL = ("app.kubernetes.io/name", "flytepropeller")
MONITORING_NAMESPACE = "monitoring"
# Upper bounds that keep "small" small.
MAX_REQUESTS = {"cpu": 0.5, "memory": 256 * 2**20}
MAX_LIMITS = {"cpu": 2.0, "memory": 1024 * 2**20}
# flyteplugins/go/tasks/plugins/webapi/connector/config.go, type Deployment.
PROPELLER_DEPLOYMENT_KEYS = {"endpoint", "insecure", "defaultServiceConfig", "timeouts",
                             "defaultTimeout", "project", "domain"}
PROPELLER_TIMEOUT_KEYS = {"CreateTask", "GetTask", "DeleteTask"}
PROPELLER_TASK_TYPES = ("spark", "databricks")
DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")


class CheckError(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise CheckError(msg)


def dig(obj, *path, default=None):
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def quantity(value, kind):
    """Kubernetes quantity to cores or bytes."""
    s = str(value)
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?", s)
    need(m, "bad %s quantity %r" % (kind, value))
    num = float(m.group(1))
    unit = m.group(2) or ""
    factor = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
              "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[unit]
    return num * factor


# --- the model: rendered objects by kind ------------------------------------

def one(objs, kind):
    found = [o for o in objs if o.get("kind") == kind]
    need(len(found) == 1, "expected one %s, found %d" % (kind, len(found)))
    return found[0]


def pod_spec(m):
    return dig(one(m["objects"], "Deployment"), "spec", "template", "spec", default={})


def container(m):
    cs = pod_spec(m).get("containers") or []
    need(len(cs) == 1, "expected one container, found %d" % len(cs))
    return cs[0]


def pod_labels(m):
    return dig(one(m["objects"], "Deployment"), "spec", "template", "metadata", "labels",
               default={}) or {}


def selects_pods(selector, m, what):
    need(isinstance(selector, dict) and selector, "%s has no selector" % what)
    labels = pod_labels(m)
    wrong = {k: v for k, v in selector.items() if labels.get(k) != v}
    need(not wrong, "%s selector %s does not match the pod labels %s" % (what, wrong, labels))


# --- checks: each raises CheckError with the reason -------------------------

def check_namespace(m):
    for o in m["objects"]:
        need(dig(o, "metadata", "namespace") == m["namespace"],
             "%s/%s is not in namespace %r" % (o.get("kind"), dig(o, "metadata", "name"),
                                                m["namespace"]))


def check_replicas(m):
    d = one(m["objects"], "Deployment")
    replicas = dig(d, "spec", "replicas")
    need(replicas == 2, "spec.replicas is %r, want 2 (one survives a node loss)" % replicas)
    selects_pods(dig(d, "spec", "selector", "matchLabels"), m, "Deployment")


def check_ports(m):
    ports = {p.get("name"): p.get("containerPort") for p in container(m).get("ports") or []}
    need(ports.get("grpc") == GRPC_PORT, "no container port named grpc = %d (%s)" % (GRPC_PORT, ports))
    need(ports.get("metrics") == METRICS_PORT,
         "no container port named metrics = %d (%s)" % (METRICS_PORT, ports))


def check_probes(m):
    c = container(m)
    for probe in ("livenessProbe", "readinessProbe"):
        p = c.get(probe)
        need(isinstance(p, dict), "%s is missing" % probe)
        need(isinstance(p.get("grpc"), dict), "%s is not a gRPC health probe" % probe)
        need(p["grpc"].get("port") == GRPC_PORT,
             "%s probes port %r, want %d" % (probe, p["grpc"].get("port"), GRPC_PORT))
        need(p["grpc"].get("service", "") == "",
             "%s asks for service %r; the daemon reports the overall status under \"\"" % (
                 probe, p["grpc"].get("service")))


def check_resources(m):
    res = container(m).get("resources") or {}
    for kind in ("cpu", "memory"):
        req = dig(res, "requests", kind)
        lim = dig(res, "limits", kind)
        need(req is not None, "resources.requests.%s is missing" % kind)
        need(lim is not None, "resources.limits.%s is missing" % kind)
        r, l = quantity(req, kind), quantity(lim, kind)
        need(0 < r <= l, "%s request %s is not within (0, limit %s]" % (kind, req, lim))
        need(r <= MAX_REQUESTS[kind], "%s request %s is not small" % (kind, req))
        need(l <= MAX_LIMITS[kind], "%s limit %s is not small" % (kind, lim))


def check_pod_security(m):
    spec = pod_spec(m)
    sc = spec.get("securityContext") or {}
    need(sc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot is not true")
    need(sc.get("runAsUser") == UID, "pod securityContext.runAsUser is %r, want %d" % (
        sc.get("runAsUser"), UID))
    need(dig(sc, "seccompProfile", "type") == "RuntimeDefault",
         "pod securityContext.seccompProfile.type is not RuntimeDefault")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        need(spec.get(key) is not True, "pod sets %s" % key)
    need(spec.get("automountServiceAccountToken") is False,
         "automountServiceAccountToken is not false (the daemon needs no API access)")
    for v in spec.get("volumes") or []:
        need("hostPath" not in v, "volume %s is a hostPath" % v.get("name"))


def check_container_security(m):
    sc = container(m).get("securityContext") or {}
    need(sc.get("readOnlyRootFilesystem") is True, "container readOnlyRootFilesystem is not true")
    need(sc.get("allowPrivilegeEscalation") is False,
         "container allowPrivilegeEscalation is not false")
    need(sc.get("privileged") is not True, "container is privileged")
    drop = dig(sc, "capabilities", "drop", default=[]) or []
    need("ALL" in drop, "container capabilities.drop does not contain ALL")
    need(not dig(sc, "capabilities", "add"), "container adds capabilities %s" % dig(
        sc, "capabilities", "add"))
    need(sc.get("runAsNonRoot") is not False, "container runAsNonRoot is false")
    need(sc.get("runAsUser", UID) not in (0, "0"), "container runAsUser is 0")
    need(sc.get("runAsUser", UID) == UID, "container runAsUser is %r, want %d" % (
        sc.get("runAsUser"), UID))
    st = dig(sc, "seccompProfile", "type", default="RuntimeDefault")
    need(st == "RuntimeDefault", "container seccompProfile.type is %s" % st)


def token_mount(m):
    """Gives (path of the token file in the container, the Secret volume) and checks how the
    Secret reaches the container: a secret volume of the manifests' Secret, its token key at
    mode 0400, mounted read-only."""
    c = container(m)
    secret = one(m["objects"], "Secret")
    sname = dig(secret, "metadata", "name")
    keys = set((secret.get("data") or {}).keys()) | set((secret.get("stringData") or {}).keys())
    volumes = [v for v in pod_spec(m).get("volumes") or [] if "secret" in v]
    need(len(volumes) == 1, "expected one secret volume (the token), found %d" % len(volumes))
    vol = volumes[0]
    need(dig(vol, "secret", "secretName") == sname,
         "the token volume mounts Secret %r, the manifests define %r" % (
             dig(vol, "secret", "secretName"), sname))
    need(dig(vol, "secret", "optional") is not True, "the token volume is optional")
    items = dig(vol, "secret", "items", default=[]) or []
    need(len(items) == 1 and items[0].get("key") in keys,
         "the token volume must project exactly the Secret's token key (items %r, keys %s)" % (
             items, sorted(keys)))
    mode = items[0].get("mode", dig(vol, "secret", "defaultMode"))
    need(mode == TOKEN_MODE, "the token file's mode is %s, want 0400" % (
        oct(mode) if isinstance(mode, int) else mode))
    mounts = [vm for vm in c.get("volumeMounts") or [] if vm.get("name") == vol.get("name")]
    need(len(mounts) == 1, "the token volume is mounted %d times" % len(mounts))
    need(mounts[0].get("readOnly") is True, "the token volume is not mounted readOnly")
    need("subPath" not in mounts[0], "the token volume uses subPath (never updated on rotation)")
    return mounts[0]["mountPath"].rstrip("/") + "/" + items[0]["path"], vol


def check_token(m):
    c = container(m)
    for e in c.get("env") or []:
        need(e.get("name") != TOKEN_ENV,
             "%s is an environment variable of the container; mount the Secret as a file "
             "(token_file) instead" % TOKEN_ENV)
        need(not dig(e, "valueFrom", "secretKeyRef"),
             "env %s comes from a Secret; secrets go in as files" % e.get("name"))
    need(not any("secretRef" in ef for ef in c.get("envFrom") or []),
         "envFrom a Secret puts secrets in the environment")
    token_mount(m)
    # A 0400 file is root's; the kubelet gives it to fsGroup (group read) so that the
    # daemon's group, and only it, reads it.
    sc = pod_spec(m).get("securityContext") or {}
    need(sc.get("fsGroup") is not None and sc.get("fsGroup") == sc.get("runAsGroup"),
         "pod securityContext.fsGroup is %r; it must be runAsGroup (%r) for the daemon to read "
         "a 0400 token file" % (sc.get("fsGroup"), sc.get("runAsGroup")))


def check_network_policy(m):
    pols = [o for o in m["objects"] if o.get("kind") == "NetworkPolicy"]
    need(len(pols) == 1, "expected one NetworkPolicy, found %d" % len(pols))
    spec = pols[0].get("spec") or {}
    selects_pods(dig(spec, "podSelector", "matchLabels"), m, "NetworkPolicy")
    need("Ingress" in (spec.get("policyTypes") or []), "NetworkPolicy policyTypes lacks Ingress")
    allowed = {}  # port -> list of peers
    for rule in spec.get("ingress") or []:
        ports = rule.get("ports")
        need(ports, "an ingress rule without ports admits every port")
        peers = rule.get("from")
        need(peers, "an ingress rule without from admits every source")
        for p in ports:
            allowed.setdefault(p.get("port"), []).extend(peers)
    need(set(allowed) <= {GRPC_PORT, METRICS_PORT, "grpc", "metrics"},
         "NetworkPolicy opens ports %s" % sorted(map(str, allowed)))
    grpc_peers = allowed.get(GRPC_PORT, []) + allowed.get("grpc", [])
    need(grpc_peers, "NetworkPolicy admits nobody on port %d (propeller must reach it)" % GRPC_PORT)
    for peer in grpc_peers:
        need(set(peer) == {"podSelector"},
             "port %d admits %s; only propeller's pods (a podSelector) may call" % (
                 GRPC_PORT, sorted(peer)))
        labels = dig(peer, "podSelector", "matchLabels", default={}) or {}
        need(labels.get(PROPELLER_POD_LABEL[0]) == PROPELLER_POD_LABEL[1],
             "port %d admits pods %r, not propeller's (%s=%s)" % (
                 GRPC_PORT, labels, PROPELLER_POD_LABEL[0], PROPELLER_POD_LABEL[1]))
    metrics_peers = allowed.get(METRICS_PORT, []) + allowed.get("metrics", [])
    need(metrics_peers, "NetworkPolicy admits nobody on port %d (Prometheus)" % METRICS_PORT)
    for peer in metrics_peers:
        need(set(peer) == {"namespaceSelector"},
             "port %d admits %s; only the monitoring namespace may scrape" % (
                 METRICS_PORT, sorted(peer)))
        labels = dig(peer, "namespaceSelector", "matchLabels", default={}) or {}
        need(labels == {"kubernetes.io/metadata.name": MONITORING_NAMESPACE},
             "port %d admits namespaces %r, not only %s" % (METRICS_PORT, labels,
                                                             MONITORING_NAMESPACE))


def config_mount(m):
    """Gives (path of the config file in the container, ConfigMap key) from --config."""
    c = container(m)
    args = list(c.get("command") or []) + list(c.get("args") or [])
    path = None
    for i, a in enumerate(args):
        if a == "--config" and i + 1 < len(args):
            path = args[i + 1]
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
    need(path, "the container is not given --config FILE")
    cm_name = dig(one(m["objects"], "ConfigMap"), "metadata", "name")
    volumes = {v.get("name"): v for v in pod_spec(m).get("volumes") or []}
    for vm in c.get("volumeMounts") or []:
        vol = volumes.get(vm.get("name")) or {}
        if "configMap" not in vol or not path.startswith(vm["mountPath"].rstrip("/") + "/"):
            continue
        need(vol["configMap"].get("name") == cm_name,
             "the config volume mounts ConfigMap %r, the manifests define %r" % (
                 vol["configMap"].get("name"), cm_name))
        need(vm.get("readOnly") is True, "the config volume is not mounted readOnly")
        rel = path[len(vm["mountPath"].rstrip("/")) + 1:]
        if "subPath" in vm:
            return path, vm["subPath"]
        for item in vol["configMap"].get("items") or [{"key": rel, "path": rel}]:
            if item.get("path") == rel:
                return path, item.get("key")
        raise CheckError("ConfigMap volume has no item at %s" % rel)
    raise CheckError("--config %s is not inside a ConfigMap volume mount" % path)


def check_config(m):
    path, key = config_mount(m)
    data = one(m["objects"], "ConfigMap").get("data") or {}
    need(key in data, "ConfigMap has no key %r (for --config %s)" % (key, path))
    try:
        cfg = json.loads(data[key])
    except ValueError as e:
        raise CheckError("ConfigMap %s is not JSON: %s" % (key, e))
    need(isinstance(cfg, dict), "ConfigMap %s is not a JSON object" % key)
    unknown = set(cfg) - CONFIG_KEYS
    need(not unknown, "ConfigMap %s has keys the daemon rejects: %s" % (key, sorted(unknown)))
    listen = cfg.get("listen", "0.0.0.0:%d" % GRPC_PORT)
    need(listen.rsplit(":", 1)[-1] == str(GRPC_PORT),
         "config listen %s is not on the gRPC container port %d" % (listen, GRPC_PORT))
    token_path, _ = token_mount(m)
    need(cfg.get("token_file") == token_path,
         "config token_file is %r, but the Secret is mounted at %s" % (cfg.get("token_file"),
                                                                     token_path))


def check_grace(m):
    g = pod_spec(m).get("terminationGracePeriodSeconds")
    need(isinstance(g, int) and g > DAEMON_GRACE_SECONDS,
         "terminationGracePeriodSeconds is %r; it must exceed the daemon's %d s graceful stop" % (
             g, DAEMON_GRACE_SECONDS))


def check_prometheus(m):
    ann = dig(one(m["objects"], "Deployment"), "spec", "template", "metadata", "annotations",
              default={}) or {}
    need(ann.get("prometheus.io/scrape") == "true", "pod annotation prometheus.io/scrape is not \"true\"")
    need(ann.get("prometheus.io/port") == str(METRICS_PORT),
         "pod annotation prometheus.io/port is %r, want \"%d\"" % (
             ann.get("prometheus.io/port"), METRICS_PORT))
    need(ann.get("prometheus.io/path", "/metrics") == "/metrics",
         "pod annotation prometheus.io/path is not /metrics")


def service_grpc_port(m):
    svc = one(m["objects"], "Service")
    for p in dig(svc, "spec", "ports", default=[]) or []:
        if p.get("name") == "grpc":
            return p
    raise CheckError("Service has no port named grpc")


def check_service(m):
    svc = one(m["objects"], "Service")
    need(dig(svc, "spec", "clusterIP") == "None",
         "Service clusterIP is %s; it must be headless (\"None\") so round_robin reaches every pod" % (
             json.dumps(dig(svc, "spec", "clusterIP")) if dig(svc, "spec", "clusterIP") else "unset"))
    p = service_grpc_port(m)
    need(p.get("port") == GRPC_PORT, "Service grpc port is %r, want %d" % (p.get("port"), GRPC_PORT))
    need(p.get("targetPort", p.get("port")) in ("grpc", GRPC_PORT),
         "Service grpc targetPort %r is not the container's grpc port" % p.get("targetPort"))
    selects_pods(dig(svc, "spec", "selector"), m, "Service")


def check_pdb(m):
    pdb = one(m["objects"], "PodDisruptionBudget")
    need(pdb.get("apiVersion") == "policy/v1", "PodDisruptionBudget is not policy/v1")
    need(dig(pdb, "spec", "minAvailable") == 1,
         "PodDisruptionBudget minAvailable is %r, want 1" % dig(pdb, "spec", "minAvailable"))
    replicas = dig(one(m["objects"], "Deployment"), "spec", "replicas") or 1
    need(replicas > 1, "minAvailable 1 with %d replica blocks every drain" % replicas)
    selects_pods(dig(pdb, "spec", "selector", "matchLabels"), m, "PodDisruptionBudget")


def check_secret_placeholder(m):
    secret = one(m["objects"], "Secret")
    values = dict(secret.get("stringData") or {})
    for k, v in (secret.get("data") or {}).items():
        values[k] = base64.b64decode(v).decode("utf-8", "replace")
    need(values, "Secret holds no token key")
    for k, v in values.items():
        need(v == TOKEN_PLACEHOLDER,
             "Secret key %s is not the placeholder %s: never commit a token" % (k, TOKEN_PLACEHOLDER))


def check_namespace_tokens_off(m):
    """The base grants nothing: the chart's rbac.enabled is off by default too."""
    rbac = ["%s/%s" % (o.get("kind"), dig(o, "metadata", "name")) for o in m["objects"]
            if o.get("kind") in RBAC_KINDS]
    need(not rbac, "the base defines %s; per-namespace tokens are opt-in (deploy/components)" % rbac)


def check_namespace_tokens_rbac(m):
    objs = m["overlay"]
    need(objs, "deploy/overlays/namespace-tokens did not render")
    d = one(objs, "Deployment")
    spec = dig(d, "spec", "template", "spec", default={})
    sa_name = spec.get("serviceAccountName")
    namespace = dig(d, "metadata", "namespace")
    need(sa_name, "the Deployment names no serviceAccountName")
    sas = [o for o in objs if o.get("kind") == "ServiceAccount" and
           dig(o, "metadata", "name") == sa_name and dig(o, "metadata", "namespace") == namespace]
    need(len(sas) == 1, "no ServiceAccount %s/%s" % (namespace, sa_name))
    need(spec.get("automountServiceAccountToken") is True,
         "the pod does not mount its service account token (the daemon reads Secrets with it)")
    roles = {dig(o, "metadata", "name"): o for o in objs if o.get("kind") == "ClusterRole"}
    need(len(roles) == 1, "expected one ClusterRole, found %d" % len(roles))
    role_name, role = next(iter(roles.items()))
    rules = role.get("rules") or []
    need(rules, "ClusterRole %s has no rules" % role_name)
    for rule in rules:
        need(rule.get("apiGroups") == [""] and rule.get("resources") == ["secrets"],
             "ClusterRole %s grants more than core secrets: %s" % (role_name, rule))
        need(rule.get("verbs") == ["get"],
             "ClusterRole %s verbs are %s; \"get\" alone reads one Secret by name (list and watch "
             "would hand over every Secret)" % (role_name, rule.get("verbs")))
        for name in rule.get("resourceNames") or []:
            need(isinstance(name, str) and DNS_SUBDOMAIN.match(name),
                 "resourceNames entry %r is not a Secret name" % name)
    bindings = [o for o in objs if o.get("kind") in ("ClusterRoleBinding", "RoleBinding") and
                dig(o, "roleRef", "name") == role_name]
    need(bindings, "nothing binds ClusterRole %s" % role_name)
    for b in bindings:
        need(dig(b, "roleRef", "kind") == "ClusterRole", "binding %s refers to a %s" % (
            dig(b, "metadata", "name"), dig(b, "roleRef", "kind")))
        subjects = b.get("subjects") or []
        need(subjects and all(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name and
                              s.get("namespace") == namespace for s in subjects),
             "binding %s subjects %s are not only ServiceAccount %s/%s" % (
                 dig(b, "metadata", "name"), subjects, namespace, sa_name))


def check_propeller(m):
    p = m["propeller"]
    need(isinstance(p, dict), "%s is not a YAML mapping" % PROPELLER)
    tp = dig(p, "tasks", "task-plugins")
    need(isinstance(tp, dict), "no tasks.task-plugins section")
    enabled = tp.get("enabled-plugins")
    need(isinstance(enabled, list) and "connector-service" in enabled,
         "tasks.task-plugins.enabled-plugins does not list connector-service")
    dft = tp.get("default-for-task-types")
    need(isinstance(dft, dict),
         "default-for-task-types must be a map (task type: plugin), found %s" % type(dft).__name__)
    for t in PROPELLER_TASK_TYPES:
        need(dft.get(t) == "connector-service",
             "default-for-task-types.%s is %r, want connector-service" % (t, dft.get(t)))
    for t, plugin in dft.items():
        need(plugin in enabled, "default-for-task-types.%s names %s, which is not enabled" % (t, plugin))
    cs = dig(p, "plugins", "connector-service")
    need(isinstance(cs, dict), "no plugins.connector-service section")
    connectors = cs.get("connectors")
    need(isinstance(connectors, dict) and connectors,
         "plugins.connector-service.connectors must be a map (ID: deployment)")
    route = cs.get("connectorForTaskTypes")
    need(isinstance(route, dict),
         "connectorForTaskTypes must be a map (task type: connector ID), found %s" % type(route).__name__)
    svc = one(m["objects"], "Service")
    want = "dns:///%s.%s.svc.cluster.local:%d" % (dig(svc, "metadata", "name"), m["namespace"],
                                                   service_grpc_port(m).get("port"))
    for t in PROPELLER_TASK_TYPES:
        cid = route.get(t)
        need(cid in connectors, "connectorForTaskTypes.%s is %r, not a connector ID in %s" % (
            t, cid, sorted(connectors)))
        d = connectors[cid]
        need(isinstance(d, dict), "connector %s is not a map" % cid)
        unknown = set(d) - PROPELLER_DEPLOYMENT_KEYS
        need(not unknown, "connector %s has keys propeller ignores: %s" % (cid, sorted(unknown)))
        need(d.get("endpoint") == want, "connector %s endpoint is %r, want %r (the headless Service)" % (
            cid, d.get("endpoint"), want))
        need(d.get("insecure") is True, "connector %s insecure is not true (the daemon serves plain gRPC)" % cid)
        timeouts = d.get("timeouts") or {}
        need(isinstance(timeouts, dict), "connector %s timeouts is not a map" % cid)
        bad = set(timeouts) - PROPELLER_TIMEOUT_KEYS
        need(not bad, "connector %s timeouts has unknown operations %s" % (cid, sorted(bad)))
        for op, v in list(timeouts.items()) + [("defaultTimeout", d.get("defaultTimeout", "1s"))]:
            need(DURATION.match(str(v)), "connector %s %s %r is not a Go duration" % (cid, op, v))
        if "defaultServiceConfig" in d:
            try:
                sc = json.loads(d["defaultServiceConfig"])
            except ValueError:
                raise CheckError("connector %s defaultServiceConfig is not JSON" % cid)
            need("round_robin" in json.dumps(sc), "connector %s does not balance round_robin" % cid)
    need("flyteplugins/go/tasks/plugins/webapi/connector/config.go" in m["propeller_text"],
         "the snippet does not cite the flyteorg/flyte file its key names come from")


CHECKS = [
    ("kustomize-namespace", check_namespace),
    ("deployment-replicas", check_replicas),
    ("deployment-ports", check_ports),
    ("deployment-grpc-probes", check_probes),
    ("deployment-resources", check_resources),
    ("pod-security-context", check_pod_security),
    ("container-security-context", check_container_security),
    ("deployment-token-from-secret", check_token),
    ("deployment-config-from-configmap", check_config),
    ("deployment-termination-grace", check_grace),
    ("deployment-prometheus-annotations", check_prometheus),
    ("service-headless-grpc", check_service),
    ("pod-disruption-budget", check_pdb),
    ("secret-placeholder-only", check_secret_placeholder),
    ("namespace-tokens-off-by-default", check_namespace_tokens_off),
    ("namespace-tokens-rbac", check_namespace_tokens_rbac),
    ("network-policy", check_network_policy),
    ("propeller-connector-service", check_propeller),
]


def run_check(fn, m):
    try:
        fn(m)
        return None
    except CheckError as e:
        return str(e)
    except Exception as e:  # a malformed manifest must fail the check, not the run
        return "check crashed on malformed input: %r" % e


# --- negative self-tests: (check expected to fail, what is broken, mutation) --

def _c(m):
    return m["objects"][[o.get("kind") for o in m["objects"]].index("Deployment")][
        "spec"]["template"]["spec"]["containers"][0]


def _pod(m):
    return m["objects"][[o.get("kind") for o in m["objects"]].index("Deployment")][
        "spec"]["template"]["spec"]


def _kind(m, kind):
    return next(o for o in m["objects"] if o.get("kind") == kind)


def _overlay(m, kind):
    return next(o for o in m["overlay"] if o.get("kind") == kind)


def _tpod(m):
    return _kind({"objects": m["tls_objects"]}, "Deployment")["spec"]["template"]["spec"]


def _tc(m):
    return _tpod(m)["containers"][0]


def _secret_volume(m):
    return next(v for v in _pod(m)["volumes"] if "secret" in v)


MUTATIONS = [
    ("namespace-tokens-off-by-default", "the base binds a role",
     lambda m: m["objects"].append({"kind": "ClusterRoleBinding", "metadata": {"name": "x"}})),
    ("namespace-tokens-rbac", "list on secrets",
     lambda m: _overlay(m, "ClusterRole")["rules"][0]["verbs"].append("list")),
    ("namespace-tokens-rbac", "secrets and configmaps",
     lambda m: _overlay(m, "ClusterRole")["rules"][0].__setitem__("resources",
                                                                  ["secrets", "configmaps"])),
    ("namespace-tokens-rbac", "the binding names another ServiceAccount",
     lambda m: _overlay(m, "ClusterRoleBinding")["subjects"][0].__setitem__("name", "default")),
    ("namespace-tokens-rbac", "service account token not mounted",
     lambda m: _overlay(m, "Deployment")["spec"]["template"]["spec"].__setitem__(
         "automountServiceAccountToken", False)),
    ("pod-security-context", "pod runAsNonRoot false",
     lambda m: _pod(m)["securityContext"].__setitem__("runAsNonRoot", False)),
    ("pod-security-context", "pod runAsUser 0",
     lambda m: _pod(m)["securityContext"].__setitem__("runAsUser", 0)),
    ("pod-security-context", "pod seccompProfile removed",
     lambda m: _pod(m)["securityContext"].pop("seccompProfile")),
    ("pod-security-context", "hostNetwork true", lambda m: _pod(m).__setitem__("hostNetwork", True)),
    ("pod-security-context", "service account token mounted",
     lambda m: _pod(m).__setitem__("automountServiceAccountToken", True)),
    ("pod-security-context", "hostPath volume",
     lambda m: _pod(m)["volumes"].append({"name": "h", "hostPath": {"path": "/"}})),
    ("container-security-context", "readOnlyRootFilesystem false",
     lambda m: _c(m)["securityContext"].__setitem__("readOnlyRootFilesystem", False)),
    ("container-security-context", "allowPrivilegeEscalation true",
     lambda m: _c(m)["securityContext"].__setitem__("allowPrivilegeEscalation", True)),
    ("container-security-context", "allowPrivilegeEscalation unset",
     lambda m: _c(m)["securityContext"].pop("allowPrivilegeEscalation")),
    ("container-security-context", "capabilities not dropped",
     lambda m: _c(m)["securityContext"]["capabilities"].__setitem__("drop", [])),
    ("container-security-context", "NET_ADMIN added",
     lambda m: _c(m)["securityContext"]["capabilities"].__setitem__("add", ["NET_ADMIN"])),
    ("container-security-context", "privileged",
     lambda m: _c(m)["securityContext"].__setitem__("privileged", True)),
    ("container-security-context", "container runAsUser 0",
     lambda m: _c(m)["securityContext"].__setitem__("runAsUser", 0)),
    ("container-security-context", "container seccomp Unconfined",
     lambda m: _c(m)["securityContext"].__setitem__("seccompProfile", {"type": "Unconfined"})),
    ("deployment-token-from-secret", "token as a literal env value",
     lambda m: _c(m).__setitem__("env", [{"name": TOKEN_ENV, "value": "dapi0123"}])),
    ("deployment-token-from-secret", "token back in an env variable from the Secret",
     lambda m: _c(m).__setitem__("env", [{"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": {
         "name": "flyte-databricks-connector-token", "key": "token"}}}])),
    ("deployment-token-from-secret", "the Secret as envFrom",
     lambda m: _c(m).__setitem__("envFrom", [{"secretRef": {"name": "x"}}])),
    ("deployment-token-from-secret", "token file mode 0644",
     lambda m: _secret_volume(m)["secret"].__setitem__("defaultMode", 0o644)),
    ("deployment-token-from-secret", "token volume from a Secret not in the manifests",
     lambda m: _secret_volume(m)["secret"].__setitem__("secretName", "other")),
    ("deployment-token-from-secret", "token volume mounted read-write",
     lambda m: [vm.__setitem__("readOnly", False) for vm in _c(m)["volumeMounts"]
                if vm["name"] == _secret_volume(m)["name"]]),
    ("deployment-token-from-secret", "no fsGroup (the daemon cannot read a 0400 file)",
     lambda m: _pod(m)["securityContext"].pop("fsGroup")),
    ("deployment-config-from-configmap", "token_file not the mounted Secret",
     lambda m: _kind(m, "ConfigMap")["data"].__setitem__(
         "config.json", '{"token_file": "/elsewhere/token"}')),
    ("network-policy", "no NetworkPolicy",
     lambda m: m["objects"].remove(_kind(m, "NetworkPolicy"))),
    ("network-policy", "gRPC port open to every pod of every namespace",
     lambda m: _kind(m, "NetworkPolicy")["spec"]["ingress"][0].__setitem__(
         "from", [{"namespaceSelector": {}}])),
    ("network-policy", "a rule without ports",
     lambda m: _kind(m, "NetworkPolicy")["spec"]["ingress"][0].pop("ports")),
    ("network-policy", "gRPC port open to other pods",
     lambda m: _kind(m, "NetworkPolicy")["spec"]["ingress"][0]["from"][0]["podSelector"]
     .__setitem__("matchLabels", {"app": "anything"})),
    ("network-policy", "metrics open to any namespace",
     lambda m: _kind(m, "NetworkPolicy")["spec"]["ingress"][1]["from"][0].__setitem__(
         "namespaceSelector", {})),
    ("tls-overlay", "gRPC probes kept",
     lambda m: _tc(m).__setitem__("livenessProbe", {"grpc": {"port": 8000}})),
    ("tls-overlay", "the TLS files world-readable",
     lambda m: [v["secret"].__setitem__("defaultMode", 0o644) for v in _tpod(m)["volumes"]
                if v["name"] == "tls"]),
    ("tls-overlay", "no --tls-key",
     lambda m: _tc(m).__setitem__("args", [a for a in _tc(m)["args"] if "tls.key" not in a
                                           and a != "--tls-key"])),
    ("tls-overlay", "certificate without localhost",
     lambda m: _kind({"objects": m["tls_objects"]}, "Certificate")["spec"]["dnsNames"].remove(
         "localhost")),
    ("network-policy", "an ipBlock admitting everyone on 8000",
     lambda m: _kind(m, "NetworkPolicy")["spec"]["ingress"][0]["from"].append(
         {"ipBlock": {"cidr": "0.0.0.0/0"}})),
    ("secret-placeholder-only", "a real-looking token committed",
     lambda m: _kind(m, "Secret").__setitem__("stringData", {"token": "dapi0123456789abcdef"})),
    ("deployment-resources", "no limits", lambda m: _c(m)["resources"].pop("limits")),
    ("deployment-resources", "request above limit",
     lambda m: _c(m)["resources"]["requests"].__setitem__("memory", "1Gi")),
    ("deployment-grpc-probes", "no liveness probe", lambda m: _c(m).pop("livenessProbe")),
    ("deployment-grpc-probes", "readiness probe on the metrics port",
     lambda m: _c(m)["readinessProbe"]["grpc"].__setitem__("port", METRICS_PORT)),
    ("deployment-replicas", "one replica",
     lambda m: _kind(m, "Deployment")["spec"].__setitem__("replicas", 1)),
    ("deployment-termination-grace", "grace period below the daemon's",
     lambda m: _pod(m).__setitem__("terminationGracePeriodSeconds", 5)),
    ("deployment-config-from-configmap", "no --config", lambda m: _c(m).__setitem__("args", [])),
    ("deployment-config-from-configmap", "unknown config key",
     lambda m: _kind(m, "ConfigMap")["data"].__setitem__("config.json", '{"listne": "0.0.0.0:8000"}')),
    ("service-headless-grpc", "Service with a cluster IP",
     lambda m: _kind(m, "Service")["spec"].pop("clusterIP")),
    ("service-headless-grpc", "Service selects other pods",
     lambda m: _kind(m, "Service")["spec"].__setitem__("selector", {"app": "other"})),
    ("pod-disruption-budget", "minAvailable 2",
     lambda m: _kind(m, "PodDisruptionBudget")["spec"].__setitem__("minAvailable", 2)),
    ("deployment-prometheus-annotations", "no scrape annotation",
     lambda m: _kind(m, "Deployment")["spec"]["template"]["metadata"]["annotations"].pop(
         "prometheus.io/scrape")),
    ("propeller-connector-service", "connector-service not enabled",
     lambda m: m["propeller"]["tasks"]["task-plugins"]["enabled-plugins"].remove("connector-service")),
    ("propeller-connector-service", "connectorForTaskTypes as a list",
     lambda m: m["propeller"]["plugins"]["connector-service"].__setitem__(
         "connectorForTaskTypes", [{"spark": "databricks-connector"}])),
    ("propeller-connector-service", "endpoint not the headless Service",
     lambda m: next(iter(m["propeller"]["plugins"]["connector-service"]["connectors"].values()))
     .__setitem__("endpoint", "flyte-databricks-connector:80")),
]


# --- loading -----------------------------------------------------------------

class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        print("ok %s" % name)
        self.passed += 1

    def fail(self, name, why):
        print("FAIL %s: %s" % (name, why))
        self.failed += 1


def load_files(report):
    """Parses every YAML file under deploy/; gives {path: [documents]}."""
    docs = {}
    paths = sorted(glob.glob(os.path.join(DEPLOY, "**", "*.yaml"), recursive=True) +
                   glob.glob(os.path.join(DEPLOY, "**", "*.yml"), recursive=True))
    if not paths:
        report.fail("manifests-parse", "no YAML files under %s" % DEPLOY)
    for path in paths:
        rel = os.path.relpath(path, ROOT)
        try:
            with open(path) as fh:
                docs[path] = [d for d in yaml.safe_load_all(fh) if d is not None]
        except (OSError, yaml.YAMLError) as e:
            report.fail("parse " + rel, str(e).replace("\n", " "))
            continue
        problems = [d for d in docs[path] if path.startswith(BASE) and not
                    os.path.basename(path).startswith("kustomization") and
                    not (isinstance(d, dict) and d.get("apiVersion") and d.get("kind") and
                         dig(d, "metadata", "name"))]
        if problems:
            report.fail("parse " + rel, "a document lacks apiVersion, kind or metadata.name")
        else:
            report.ok("parse " + rel)
    return docs


def render(report, docs):
    """Gives (objects, namespace) of deploy/base, rendered by kustomize if possible."""
    kpath = os.path.join(BASE, "kustomization.yaml")
    kust = (docs.get(kpath) or [{}])[0]
    namespace = kust.get("namespace", "default")
    listed = set(kust.get("resources") or [])
    present = {os.path.basename(p) for p in docs if os.path.dirname(p) == BASE} - {"kustomization.yaml"}
    if listed == present:
        report.ok("kustomization-lists-every-resource")
    else:
        report.fail("kustomization-lists-every-resource",
                    "resources %s, files %s" % (sorted(listed), sorted(present)))
    kubectl = shutil.which("kubectl")
    if kubectl:
        try:
            r = subprocess.run([kubectl, "kustomize", BASE], capture_output=True, text=True,
                               timeout=120)
        except subprocess.TimeoutExpired:
            r = subprocess.CompletedProcess([], 1, "", "kubectl kustomize timed out after 120 s")
        if r.returncode == 0:
            objs = [d for d in yaml.safe_load_all(r.stdout) if d]
            report.ok("kustomize-build (%d objects)" % len(objs))
            return objs, namespace
        report.fail("kustomize-build", (r.stderr or r.stdout).strip().replace("\n", " "))
    else:
        print("# skip kustomize-build: kubectl is not installed; checking the raw resource files")
    objs = []
    for res in sorted(listed):
        for d in docs.get(os.path.join(BASE, res), []):
            d = copy.deepcopy(d)
            d.setdefault("metadata", {}).setdefault("namespace", namespace)
            objs.append(d)
    return objs, namespace


def merge(into, patch):
    """A strategic merge patch of maps only, which is all the component's patch holds."""
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)


def render_overlay(report, docs, base_objs, namespace):
    """The objects of deploy/overlays/namespace-tokens: kustomize's, or without kubectl the
    base plus the component's resources and patch."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", NS_TOKENS_OVERLAY], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            report.fail("kustomize-build namespace-tokens",
                        (r.stderr or r.stdout).strip().replace("\n", " "))
            return []
        report.ok("kustomize-build namespace-tokens")
        return [d for d in yaml.safe_load_all(r.stdout) if d]
    comp = (docs.get(os.path.join(NS_TOKENS_COMPONENT, "kustomization.yaml")) or [{}])[0]
    objs = copy.deepcopy(base_objs)
    for res in comp.get("resources") or []:
        for d in docs.get(os.path.join(NS_TOKENS_COMPONENT, res), []):
            d = copy.deepcopy(d)
            if d.get("kind") not in ("ClusterRole", "ClusterRoleBinding"):
                d.setdefault("metadata", {}).setdefault("namespace", namespace)
            objs.append(d)
    for p in comp.get("patches") or []:
        for patch in docs.get(os.path.join(NS_TOKENS_COMPONENT, p.get("path", "")), []):
            for o in objs:
                if o.get("kind") == patch.get("kind") and dig(o, "metadata", "name") == dig(
                        patch, "metadata", "name"):
                    merge(o, {k: v for k, v in patch.items() if k != "metadata"})
    return objs


def daemon_check_config(report, m):
    """Runs the built daemon's --check-config on the ConfigMap's config."""
    name = "configmap-passes-daemon-check-config"
    build = os.environ.get("BUILD", "build")
    binary = os.path.join(build if os.path.isabs(build) else os.path.join(ROOT, build),
                          "flyte-databricks-connector")
    if not os.access(binary, os.X_OK):
        print("# skip %s: %s is not built" % (name, binary))
        return
    try:
        _, key = config_mount(m)
        text = one(m["objects"], "ConfigMap")["data"][key]
    except (CheckError, KeyError) as e:
        report.fail(name, "no config to check: %s" % e)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.json")
        cfg = json.loads(text)
        # The mounted token file does not exist here: a placeholder stands in for it.
        if cfg.get("token_file"):
            cfg["token_file"] = os.path.join(tmp, "token")
            with open(cfg["token_file"], "w") as fh:
                fh.write(TOKEN_PLACEHOLDER + "\n")
            os.chmod(cfg["token_file"], 0o400)
        with open(path, "w") as fh:
            json.dump(cfg, fh)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE_")}
        r = subprocess.run([binary, "--check-config", "--config", path], capture_output=True,
                           text=True, env=env, timeout=30)
    out = (r.stdout + r.stderr).strip().replace("\n", " | ")
    if r.returncode == 0:
        report.ok(name)
    else:
        report.fail(name, "exit code %d: %s" % (r.returncode, out))


def self_test(report, m):
    checks = dict(CHECKS, **{"tls-overlay": check_tls_overlay})
    for n, (check, what, mutate) in enumerate(MUTATIONS, 1):
        name = "self-test-%02d-%s" % (n, check)
        if check == "tls-overlay" and m.get("tls_objects") is None:
            continue  # not rendered (no kubectl)
        broken = copy.deepcopy(m)
        try:
            mutate(broken)
        except Exception as e:
            report.fail(name, "cannot apply %r to the manifests: %r" % (what, e))
            continue
        why = run_check(checks[check], broken)
        if why:
            report.ok("%s (%s caught: %s)" % (name, what, why))
        else:
            report.fail(name, "%s was not caught by %s" % (what, check))


TLS_OVERLAY = os.path.join(DEPLOY, "tls")


def check_tls_overlay(m):
    """deploy/tls rendered: the daemon gets --tls-cert/--tls-key from a read-only 0400 mount of
    the Certificate's Secret, the probes run the daemon's client over TLS (kubelet's gRPC
    probes cannot), and the certificate names the Service propeller dials and localhost."""
    objs = m["tls_objects"]
    c = container({"objects": objs})
    args = list(c.get("args") or [])
    flags = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    need("--tls-cert" in flags and "--tls-key" in flags, "the container lacks --tls-cert/--tls-key")
    cert = one(objs, "Certificate")
    secret = dig(cert, "spec", "secretName")
    vols = {v.get("name"): v for v in pod_spec({"objects": objs}).get("volumes") or []}
    tls_vols = [n for n, v in vols.items() if dig(v, "secret", "secretName") == secret]
    need(len(tls_vols) == 1, "no volume of the Certificate's Secret %r" % secret)
    need(dig(vols[tls_vols[0]], "secret", "defaultMode") == TOKEN_MODE,
         "the TLS files' mode is not 0400")
    mounts = [vm for vm in c.get("volumeMounts") or [] if vm.get("name") == tls_vols[0]]
    need(len(mounts) == 1 and mounts[0].get("readOnly") is True,
         "the TLS volume is not mounted once, read-only")
    where = mounts[0]["mountPath"].rstrip("/") + "/"
    need(flags["--tls-cert"] == where + "tls.crt" and flags["--tls-key"] == where + "tls.key",
         "--tls-cert/--tls-key %s %s are not the mounted tls.crt/tls.key" % (
             flags["--tls-cert"], flags["--tls-key"]))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        cmd = dig(c, probe, "exec", "command", default=[]) or []
        need("grpc" not in (c.get(probe) or {}), "%s is a gRPC probe (it cannot speak TLS)" % probe)
        need(len(cmd) > 2 and cmd[1] == "agents" and "--ca-file" in cmd,
             "%s does not run `agents --ca-file ...`: %r" % (probe, cmd))
        need(cmd[cmd.index("--ca-file") + 1] == where + "ca.crt",
             "%s trusts %r, not the mounted ca.crt" % (probe, cmd[cmd.index("--ca-file") + 1]))
    names = set(dig(cert, "spec", "dnsNames", default=[]) or [])
    svc = one(objs, "Service")
    fqdn = "%s.%s.svc.cluster.local" % (dig(svc, "metadata", "name"), m["namespace"])
    need({fqdn, "localhost"} <= names, "the Certificate's dnsNames %s lack %s or localhost" % (
        sorted(names), fqdn))


def render_tls_overlay(report):
    """The objects of deploy/tls, or None (kubectl missing: reported as a skip)."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("# skip tls-overlay: kubectl is not installed")
        return None
    r = subprocess.run([kubectl, "kustomize", TLS_OVERLAY], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        report.fail("tls-overlay-build", (r.stderr or r.stdout).strip().replace("\n", " "))
        return None
    report.ok("tls-overlay-build")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def main(argv):
    report = Report()
    docs = load_files(report)
    objs, namespace = render(report, docs)
    propeller_docs = docs.get(PROPELLER) or [None]
    try:
        with open(PROPELLER) as fh:
            propeller_text = fh.read()
    except OSError:
        propeller_text = ""
    m = {"objects": objs, "namespace": namespace, "propeller": propeller_docs[0],
         "propeller_text": propeller_text,
         "overlay": render_overlay(report, docs, objs, namespace)}
    for name, fn in CHECKS:
        why = run_check(fn, m)
        if why:
            report.fail(name, why)
        else:
            report.ok(name)
    daemon_check_config(report, m)
    m["tls_objects"] = render_tls_overlay(report)
    if m["tls_objects"] is not None:
        why = run_check(check_tls_overlay, m)
        if why:
            report.fail("tls-overlay", why)
        else:
            report.ok("tls-overlay")
    if "--no-self-test" not in argv:
        self_test(report, m)
    print("%d passed, %d failed" % (report.passed, report.failed))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
