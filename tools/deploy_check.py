#!/usr/bin/env python3
"""Checks deploy/: renders each Kubernetes overlay with `kubectl kustomize`, validates every
object against the Kubernetes schemas (kubernetes-validate, strict, offline) and asserts what
the manifests must never lose; checks deploy/compose.yaml the same way. Exits 1 listing every
failure. Run with the test venv (~/.cache/portcullis-venv/bin/python), which has PyYAML and
kubernetes-validate; tests/it/deploy.rs runs every subcommand.

    deploy_check.py kubernetes OVERLAY...     render, validate, assert (the checks below)
    deploy_check.py compose FILE              services present, only 443 published
    deploy_check.py self-test                 every check fails on a doctored copy
    deploy_check.py extract OVERLAY OUTDIR    the portcullis containers' ConfigMaps as mounted
                                              under OUTDIR, their args as JSON on stdout

What the gateway listens on is read from the manifests themselves: `portcullis run`'s
portcullis.toml (from the ConfigMap mounted where --config points) or `portcullis sidecar`'s
flags. The checks then hold the manifests to it: no externally reachable Service (LoadBalancer,
NodePort, externalIPs), hostPort or hostNetwork reaches the management or internal listener;
an external Service exposes only port 443 onto a TLS listener; every container runs as non-root
with a read-only root filesystem, no privilege escalation and no capabilities; probes hit
/health/live and /health/ready on the management port; the NetworkPolicies selecting a gateway
admit its management port from the `monitoring` namespace only; a sidecar's app binds loopback
and is reached only through the sidecar; a `run` gateway on PostgreSQL has 2+ replicas, a
PodDisruptionBudget, pod anti-affinity, requests and limits, its database password from a
Secret, and routes and policies from ConfigMap directory mounts with fixed names (hot reload).
"""

import ipaddress
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.parse

import yaml

K8S_VERSION = "1.32.0"
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}
DEFAULT_CONFIG = "/etc/portcullis/portcullis.toml"  # the image's WORKDIR and CMD (Dockerfile)


class Failures(list):
    def add(self, check, what):
        self.append(f"{check}: {what}")


def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", overlay], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"kubectl kustomize {overlay} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def name_of(o):
    return f"{o['kind']}/{o['metadata'].get('name')}"


def ns_of(o):
    return o["metadata"].get("namespace", "default")


def find(objs, kind, name=None):
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


# --- the pods and the gateways in them ----------------------------------------------------


class Pod:
    """One pod template: its owner, labels, spec, and the gateway in it (if any)."""

    def __init__(self, owner, template):
        self.owner = owner
        self.ns = ns_of(owner)
        self.labels = template.get("metadata", {}).get("labels", {}) or {}
        self.spec = template.get("spec", {})
        self.containers = list(self.spec.get("containers", [])) + list(
            self.spec.get("initContainers", []) or []
        )

    def port_number(self, container, port):
        """A probe's or Service's target port (name or number) as a number in `container`."""
        if isinstance(port, int):
            return port
        if isinstance(port, str) and port.isdigit():
            return int(port)
        for p in container.get("ports", []) or []:
            if p.get("name") == port:
                return p["containerPort"]
        return None

    def target_ports(self, port):
        """Every container port a Service's targetPort reaches in this pod."""
        return {(c["name"], n) for c in self.containers if (n := self.port_number(c, port)) is not None}


def pods(objs):
    for o in objs:
        if o["kind"] in WORKLOADS:
            yield Pod(o, o["spec"]["template"])
        elif o["kind"] == "CronJob":
            yield Pod(o, o["spec"]["jobTemplate"]["spec"]["template"])
        elif o["kind"] == "Pod":
            yield Pod(o, o)


def flags(args):
    """`--name value` and `--name=value` pairs (a bare `--flag` maps to True)."""
    out, i = {}, 0
    while i < len(args):
        a = args[i]
        if a.startswith("-"):
            key = a.lstrip("-")
            if "=" in key:
                key, val = key.split("=", 1)
                out[key] = val
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                out[key] = args[i + 1]
                i += 1
            else:
                out[key] = True
        i += 1
    return out


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


def host_of(addr):
    return str(addr).rsplit(":", 1)[0].strip("[]")


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Gateway:
    """A portcullis container and what it listens on, read from its config or flags."""

    def __init__(self, pod, container, objs):
        self.pod, self.container = pod, container
        args = container.get("args") or container.get("command") or ["run"]
        if args and args[0].endswith("portcullis"):
            args = args[1:]
        self.mode = args[0]
        self.flags = flags(args[1:])
        env = {e["name"]: e.get("value") for e in container.get("env", []) or []}
        self.env = env
        self.config, self.config_path = {}, None
        if self.mode == "run":
            self.config_path = self.flags.get("config") or env.get("PORTCULLIS_CONFIG") or DEFAULT_CONFIG
            text = mounted_file(pod, container, self.config_path, objs)
            if text is None:
                raise SystemExit(f"{name_of(pod.owner)}: {self.config_path} is not mounted from a ConfigMap")
            self.config = tomllib.loads(text)
            listen = self.config.get("listen", {})
            self.public = port_of(listen["public"])
            self.management = port_of(listen.get("management", "127.0.0.1:9000"))
            self.internal = port_of(listen["internal"]) if "internal" in listen else None
            self.tls = "tls" in self.config
            routing = self.config.get("routing", {})
            base = os.path.dirname(self.config_path)
            self.watched = [
                os.path.normpath(os.path.join(base, routing.get("routes", "routes"))),
                os.path.normpath(os.path.join(base, routing.get("policies", "policies"))),
            ] if routing.get("watch", True) else []
            self.database = (self.config.get("issuer") or {}).get("database")
        else:
            get = lambda k, d=None: self.flags.get(k, env.get("PORTCULLIS_" + k.upper().replace("-", "_"), d))
            self.public = port_of(get("listen"))
            self.management = port_of(get("management", "127.0.0.1:9000"))
            self.internal, self.tls, self.database = None, False, None
            self.upstream = get("upstream")
            self.watched = [os.path.normpath(get("policies"))]

    @property
    def private(self):
        return {p for p in (self.management, self.internal) if p is not None}

    def where(self):
        return f"{name_of(self.pod.owner)} container {self.container['name']}"


def is_gateway(container):
    args = container.get("args") or container.get("command") or []
    image = container.get("image", "").rsplit("/", 1)[-1]
    if args and args[0].endswith("portcullis"):
        args = args[1:]
    if not args:
        return image.startswith("portcullis")  # the image's CMD is `run`
    return args[0] in ("run", "sidecar")


def gateways(objs):
    return [Gateway(p, c, objs) for p in pods(objs) for c in p.containers if is_gateway(c)]


def mount_for(pod, container, path):
    """The volume mount holding `path`, and the key of `path` inside its volume."""
    for m in container.get("volumeMounts", []) or []:
        mp = m["mountPath"].rstrip("/")
        if m.get("subPath") and path == mp:
            return m, m["subPath"]
        if not m.get("subPath") and os.path.dirname(path) == mp:
            return m, os.path.basename(path)
    return None, None


def volume(pod, name):
    return next((v for v in pod.spec.get("volumes", []) or [] if v["name"] == name), None)


def configmap_of(pod, mount, objs):
    v = volume(pod, mount["name"]) if mount else None
    if not v or "configMap" not in v:
        return None
    return next(iter(find([o for o in objs if ns_of(o) == pod.ns], "ConfigMap", v["configMap"]["name"])), None)


def mounted_file(pod, container, path, objs):
    m, key = mount_for(pod, container, path)
    cm = configmap_of(pod, m, objs)
    if cm is None:
        return None
    items = volume(pod, m["name"])["configMap"].get("items")
    if items:
        key = next((i["key"] for i in items if i["path"] == key), None)
    return (cm.get("data") or {}).get(key)


def selects(selector, labels):
    """A LabelSelector (NetworkPolicy, PodDisruptionBudget, affinity): `{}` selects every pod."""
    if selector is None:
        return False
    if selector.get("matchExpressions"):
        raise SystemExit(f"matchExpressions are not supported by this checker: {selector}")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def service_selects(svc, labels):
    """A Service's selector map: a Service without one selects no pod."""
    sel = svc.get("spec", {}).get("selector") or {}
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def is_external(svc):
    s = svc.get("spec", {})
    return s.get("type") in ("LoadBalancer", "NodePort") or bool(s.get("externalIPs"))


def selected_pods(svc, objs):
    return [p for p in pods(objs) if p.ns == ns_of(svc) and service_selects(svc, p.labels)]


# --- the checks ----------------------------------------------------------------------------


def check_schema(objs, gws, f):
    import kubernetes_validate

    for o in objs:
        try:
            kubernetes_validate.validate(o, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            f.add("schema", f"{name_of(o)}: {e.message} at {list(e.absolute_path)}")
        except kubernetes_validate.SchemaNotFoundError:
            f.add("schema", f"{name_of(o)}: no schema for {o['apiVersion']} {o['kind']} in {K8S_VERSION}")


def check_nonroot(objs, gws, f):
    for p in pods(objs):
        pod_sc = p.spec.get("securityContext", {}) or {}
        for c in p.containers:
            sc = c.get("securityContext", {}) or {}
            where = f"{name_of(p.owner)} container {c['name']}"
            if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
                f.add("nonroot", f"{where}: runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                f.add("nonroot", f"{where}: runAsUser is 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                f.add("nonroot", f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                f.add("nonroot", f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                f.add("nonroot", f"{where}: privileged")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                f.add("nonroot", f"{where}: capabilities do not drop ALL")
            if (sc.get("capabilities") or {}).get("add"):
                f.add("nonroot", f"{where}: adds capabilities {sc['capabilities']['add']}")


def check_exposure(objs, gws, f):
    """Nothing outside the cluster reaches a management or internal listener."""
    for g in gws:
        if g.pod.spec.get("hostNetwork"):
            f.add("exposure", f"{g.where()}: hostNetwork puts every listener on the node's address")
        for p in g.container.get("ports", []) or []:
            if p.get("hostPort") and p["containerPort"] in g.private:
                f.add("exposure", f"{g.where()}: hostPort {p['hostPort']} → private port {p['containerPort']}")
    for svc in find(objs, "Service"):
        chosen = selected_pods(svc, objs)
        if svc["spec"].get("selector") and not chosen:
            f.add("exposure", f"{name_of(svc)}: its selector matches no pod")
        if not is_external(svc):
            continue
        for sp in svc["spec"].get("ports", []):
            target = sp.get("targetPort", sp["port"])
            for g in (g for g in gws if any(g.pod.owner is p.owner for p in chosen)):
                if g.pod.port_number(g.container, target) in g.private:
                    f.add("exposure", f"{name_of(svc)} ({svc['spec'].get('type', 'ClusterIP')}) port "
                          f"{sp['port']} reaches {g.where()}'s private port {target}")


def check_public(objs, gws, f):
    """An external Service exposes 443 onto a TLS listener and nothing else; a TLS gateway has one."""
    for svc in (s for s in find(objs, "Service") if is_external(s)):
        chosen = selected_pods(svc, objs)
        for sp in svc["spec"].get("ports", []):
            target = sp.get("targetPort", sp["port"])
            ok = sp["port"] == 443 and any(
                g.tls and g.pod.port_number(g.container, target) == g.public
                for g in gws if any(g.pod.owner is p.owner for p in chosen)
            )
            if not ok:
                f.add("public", f"{name_of(svc)} port {sp['port']} → {target} is not 443 onto a TLS listener")
    for g in (g for g in gws if g.mode == "run" and g.tls):
        if not any(is_external(s) and any(g.pod.owner is p.owner for p in selected_pods(s, objs))
                   for s in find(objs, "Service")):
            f.add("public", f"{g.where()}: no public Service reaches its TLS listener")


def check_cluster_services(objs, gws, f):
    """A `run` gateway has in-cluster Services for metrics and, with an internal listener, the backchannel."""
    for g in (g for g in gws if g.mode == "run"):
        for port, what in ((g.management, "metrics"), (g.internal, "backchannel")):
            if port is None:
                continue
            if not any(not is_external(s) and any(
                g.pod.owner is p.owner and g.pod.port_number(g.container, sp.get("targetPort", sp["port"])) == port
                for p in selected_pods(s, objs) for sp in s["spec"].get("ports", []))
                for s in find(objs, "Service")):
                f.add("services", f"{g.where()}: no ClusterIP Service for the {what} port {port}")


def check_probes(objs, gws, f):
    for g in gws:
        for kind, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready"),
                           ("startupProbe", None)):
            probe = g.container.get(kind)
            if probe is None and path is None:
                continue
            get = (probe or {}).get("httpGet")
            if not get:
                f.add("probes", f"{g.where()}: no httpGet {kind}")
                continue
            if path and get.get("path") != path:
                f.add("probes", f"{g.where()}: {kind} asks {get.get('path')}, not {path}")
            if not str(get.get("path", "")).startswith("/health/"):
                f.add("probes", f"{g.where()}: {kind} asks {get.get('path')}")
            if g.pod.port_number(g.container, get.get("port")) != g.management:
                f.add("probes", f"{g.where()}: {kind} port {get.get('port')} is not the management port {g.management}")


def admits(rule, port, names):
    ports = rule.get("ports")
    if not ports:
        return True  # a rule without ports admits every port
    for p in ports:
        q = p.get("port")
        if q is None or q == port or q in names:
            return True
        if isinstance(q, int) and p.get("endPort") and q <= port <= p["endPort"]:
            return True
    return False


def check_netpol(objs, gws, f):
    """The policies selecting a gateway admit its management port from `monitoring` only."""
    for g in gws:
        names = {p["name"] for p in g.container.get("ports", []) or [] if p.get("containerPort") == g.management and "name" in p}
        policies = [n for n in find(objs, "NetworkPolicy")
                    if ns_of(n) == g.pod.ns and selects(n["spec"].get("podSelector"), g.pod.labels)
                    and "Ingress" in (n["spec"].get("policyTypes") or ["Ingress"])]
        if not policies:
            f.add("netpol", f"{g.where()}: no NetworkPolicy restricts its ingress (management is open)")
        for n in policies:
            for rule in n["spec"].get("ingress", []) or []:
                if not admits(rule, g.management, names):
                    continue
                peers = rule.get("from") or []
                if not peers:
                    f.add("netpol", f"{name_of(n)}: admits management port {g.management} from anywhere")
                for peer in peers:
                    nsel = peer.get("namespaceSelector")
                    if (peer.get("ipBlock") or nsel is None or nsel.get("matchExpressions")
                            or (nsel.get("matchLabels") or {}) != MONITORING):
                        f.add("netpol", f"{name_of(n)}: admits management port {g.management} from {peer}")


def check_sidecar(objs, gws, f):
    """A sidecar forwards to loopback, where its app listens, and nothing else reaches the app."""
    for g in (g for g in gws if g.mode == "sidecar"):
        up = urllib.parse.urlsplit(g.upstream or "")
        if not is_loopback(up.hostname or ""):
            f.add("sidecar", f"{g.where()}: --upstream {g.upstream} is not on loopback")
        apps = [c for c in g.pod.containers if not is_gateway(c)]
        if not apps:
            f.add("sidecar", f"{g.where()}: no app container beside it")
        for c in apps:
            addrs = [v for k, v in flags(c.get("args") or []).items() if k in ("listen", "bind", "addr")]
            addrs += [e.get("value") for e in c.get("env", []) or [] if e["name"] in ("LISTEN", "BIND", "HOST")]
            if not addrs or any(not is_loopback(host_of(a)) for a in addrs if isinstance(a, str)):
                f.add("sidecar", f"{name_of(g.pod.owner)} app {c['name']}: does not bind loopback ({addrs})")
            if c.get("ports"):
                f.add("sidecar", f"{name_of(g.pod.owner)} app {c['name']}: declares ports {c['ports']}")
            if up.port is not None and not any(isinstance(a, str) and port_of(a) == up.port for a in addrs):
                f.add("sidecar", f"{name_of(g.pod.owner)} app {c['name']}: does not listen on the upstream port {up.port}")
            for svc in find(objs, "Service"):
                if any(g.pod.owner is p.owner for p in selected_pods(svc, objs)):
                    for sp in svc["spec"].get("ports", []):
                        if sp.get("targetPort", sp["port"]) == up.port:
                            f.add("sidecar", f"{name_of(svc)}: targets the app's port {up.port}")


HASHED = re.compile(r"-[a-z0-9]{10}$")  # kustomize's content-hash suffix


def check_reload(objs, gws, f):
    """Watched routes/policies directories are ConfigMap directory mounts with fixed names, so an
    update lands in the running pods (a subPath mount never updates; a hashed name rolls them)."""
    for g in gws:
        if not g.watched:
            f.add("reload", f"{g.where()}: routing.watch is off")
        for d in g.watched:
            mount = next((m for m in g.container.get("volumeMounts", []) or []
                          if m["mountPath"].rstrip("/") == d), None)
            if mount is None or mount.get("subPath"):
                f.add("reload", f"{g.where()}: {d} is not a directory mount")
                continue
            cm = configmap_of(g.pod, mount, objs)
            if cm is None:
                f.add("reload", f"{g.where()}: {d} is not mounted from a ConfigMap of this render")
            elif HASHED.search(cm["metadata"]["name"]):
                f.add("reload", f"{g.where()}: ConfigMap {cm['metadata']['name']} has a hash suffix: "
                      "every change rolls the pods instead of reloading")


def check_edge(objs, gws, f):
    """A `run` gateway on PostgreSQL is meant to be replicated: it must be built for it."""
    for g in (g for g in gws if g.mode == "run" and str(g.database or "").startswith("postgres")):
        owner, where = g.pod.owner, g.where()
        if owner["kind"] == "Deployment" and (owner["spec"].get("replicas") or 1) < 2:
            f.add("edge", f"{where}: fewer than 2 replicas")
        if not any(ns_of(b) == g.pod.ns and selects(b["spec"].get("selector"), g.pod.labels)
                   for b in find(objs, "PodDisruptionBudget")):
            f.add("edge", f"{where}: no PodDisruptionBudget selects it")
        anti = (g.pod.spec.get("affinity") or {}).get("podAntiAffinity") or {}
        terms = list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []) + [
            t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        if not any(selects(t.get("labelSelector"), g.pod.labels) and t.get("topologyKey") for t in terms):
            f.add("edge", f"{where}: no pod anti-affinity term spreads its replicas")
        for c in g.pod.containers:
            r = c.get("resources") or {}
            for need in ("requests.cpu", "requests.memory", "limits.memory"):
                a, b = need.split(".")
                if not (r.get(a) or {}).get(b):
                    f.add("edge", f"{name_of(owner)} container {c['name']}: no resources.{need}")
        url = urllib.parse.urlsplit(g.database)
        if url.password:
            f.add("edge", f"{where}: the database URL carries a password (keep it in a Secret)")
        pw = next((e for e in g.container.get("env", []) or [] if e["name"] == "PGPASSWORD"), None)
        if not url.password and not (pw and (pw.get("valueFrom") or {}).get("secretKeyRef")):
            f.add("edge", f"{where}: PGPASSWORD does not come from a Secret (secretKeyRef)")


CHECKS = [check_schema, check_nonroot, check_exposure, check_public, check_cluster_services,
          check_probes, check_netpol, check_sidecar, check_reload, check_edge]


def check_objects(objs):
    f = Failures()
    gws = gateways(objs)
    if not gws:
        f.add("gateway", "no portcullis container in the render")
    for check in CHECKS:
        check(objs, gws, f)
    return f


# --- compose -------------------------------------------------------------------------------


def published(entry):
    """(host port or None for a random one, container port) of one `ports` entry."""
    if isinstance(entry, dict):
        p = entry.get("published")
        return (int(p) if p not in (None, "") else None), int(entry["target"])
    parts = str(entry).split("/")[0].rsplit(":", 2)
    if len(parts) == 1:
        return None, int(parts[0])
    return int(parts[-2]), int(parts[-1])


def check_compose(path, doc=None):
    f = Failures()
    if doc is None:
        with open(path) as fh:
            doc = yaml.safe_load(fh)
    services = doc.get("services") or {}
    for need in ("portcullis", "postgres", "maildev", "redis"):
        if need not in services:
            f.add("compose", f"no service {need}")
    demos = [n for n, s in services.items() if (s.get("command") or [None])[0] == "echo"]
    if len(demos) < 2:
        f.add("compose", f"two demo services wanted, found {demos}")
    gw = services.get("portcullis") or {}
    config = None
    for v in gw.get("volumes") or []:
        src, _, rest = str(v).partition(":")
        if rest.split(":")[0] == DEFAULT_CONFIG:
            with open(os.path.join(os.path.dirname(path), src), "rb") as fh:
                config = tomllib.load(fh)
    if config is None:
        f.add("compose", f"the portcullis service mounts no {DEFAULT_CONFIG}")
        config = {}
    tls_port = port_of(config["listen"]["public"]) if "tls" in config and "listen" in config else None
    for name, s in services.items():
        if s.get("network_mode") == "host":
            f.add("compose", f"{name}: network_mode host publishes every port")
        for entry in s.get("ports") or []:
            host, target = published(entry)
            if name != "portcullis" or host != 443 or target != tls_port:
                f.add("compose", f"{name} publishes {entry}: only portcullis's 443 → its TLS port {tls_port}")
    if not [e for e in gw.get("ports") or []]:
        f.add("compose", "portcullis publishes nothing")
    return f


# --- extract: the mounted config files, for `portcullis check` ------------------------------


def extract(overlay, out):
    objs = render(overlay)
    result = []
    for g in gateways(objs):
        for m in g.container.get("volumeMounts", []) or []:
            cm = configmap_of(g.pod, m, objs)
            if cm is None:
                continue
            target = os.path.join(out, m["mountPath"].lstrip("/"))
            for key, text in (cm.get("data") or {}).items():
                if m.get("subPath") and key != m["subPath"]:
                    continue
                dest = target if m.get("subPath") else os.path.join(target, key)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "w") as fh:
                    fh.write(text)
        result.append({"owner": name_of(g.pod.owner), "container": g.container["name"], "mode": g.mode,
                       "args": g.container.get("args") or []})
    return result


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if len(argv) >= 2 and argv[0] == "kubernetes":
        bad = []
        for overlay in argv[1:]:
            objs = render(overlay)
            got = check_objects(objs)
            bad += [f"{overlay}: {x}" for x in got]
            print(f"{overlay}: {len(objs)} objects, schemas of Kubernetes {K8S_VERSION} (strict), "
                  f"{len(CHECKS)} checks: {'FAIL' if got else 'ok'}")
    elif len(argv) == 2 and argv[0] == "compose":
        bad = check_compose(argv[1])
        print(f"{argv[1]}: {'FAIL' if bad else 'ok'}")
    elif argv == ["self-test"]:
        import deploy_check_selftest

        bad = deploy_check_selftest.self_test(root)
    elif len(argv) == 3 and argv[0] == "extract":
        print(json.dumps(extract(argv[1], argv[2])))
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for b in bad:
        print(b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
