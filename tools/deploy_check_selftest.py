#!/usr/bin/env python3
"""The self-test of deploy_check.py: every check must fail on a doctored copy of a rendered
overlay (or of compose.yaml) that breaks what it guards, and the pristine files must pass.
Run as `deploy_check.py self-test`."""

import copy
import os

import yaml

from deploy_check import check_compose, check_objects, find, render


def obj(objs, kind, suffix):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(suffix))


def container(objs, name, suffix="portcullis"):
    d = obj(objs, "Deployment", suffix)
    return next(c for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def ingress(objs, suffix):
    return obj(objs, "NetworkPolicy", suffix)["spec"]["ingress"]


def vol(objs, name):
    spec = obj(objs, "Deployment", "portcullis")["spec"]["template"]["spec"]
    return next(v for v in spec["volumes"] if v["name"] == name)


def set_(d, key, value):
    d[key] = value


HASHED_NAME = "portcullis-policies-5hkk9m6bt2"


EDGE_BREAKS = [
    ("schema", "an unknown field", lambda o: set_(obj(o, "Deployment", "portcullis")["spec"], "replica", 2)),
    ("schema", "a port as a word", lambda o: set_(obj(o, "Service", "backchannel")["spec"]["ports"][0], "port", "x")),
    ("nonroot", "runAsNonRoot off", lambda o: set_(container(o, "portcullis")["securityContext"], "runAsNonRoot", False)
        or set_(obj(o, "Deployment", "portcullis")["spec"]["template"]["spec"]["securityContext"], "runAsNonRoot", False)),
    ("nonroot", "a writable root", lambda o: container(o, "orders", "orders")["securityContext"].pop("readOnlyRootFilesystem")),
    ("nonroot", "uid 0", lambda o: set_(container(o, "portcullis")["securityContext"], "runAsUser", 0)),
    ("exposure", "metrics on a LoadBalancer", lambda o: set_(obj(o, "Service", "metrics")["spec"], "type", "LoadBalancer")),
    ("exposure", "backchannel on a NodePort", lambda o: set_(obj(o, "Service", "backchannel")["spec"], "type", "NodePort")),
    ("exposure", "management by number on the public Service", lambda o: obj(o, "Service", "portcullis")["spec"]["ports"].append(
        {"name": "m", "port": 9443, "targetPort": 9000})),
    ("exposure", "hostNetwork", lambda o: set_(obj(o, "Deployment", "portcullis")["spec"]["template"]["spec"], "hostNetwork", True)),
    ("public", "the public port 80", lambda o: set_(obj(o, "Service", "portcullis")["spec"]["ports"][0], "port", 80)),
    ("public", "no public Service", lambda o: set_(obj(o, "Service", "portcullis")["spec"], "type", "ClusterIP")),
    ("services", "no backchannel Service", lambda o: o.remove(obj(o, "Service", "backchannel"))),
    ("probes", "liveness on /", lambda o: set_(container(o, "portcullis")["livenessProbe"]["httpGet"], "path", "/")),
    ("probes", "readiness on the TLS port", lambda o: set_(container(o, "portcullis")["readinessProbe"]["httpGet"], "port", "https")),
    ("probes", "no readiness probe", lambda o: container(o, "portcullis").pop("readinessProbe")),
    ("netpol", "management from any namespace", lambda o: set_(ingress(o, "management")[0]["from"][0], "namespaceSelector", {})),
    ("netpol", "management from anywhere", lambda o: ingress(o, "management")[0].pop("from")),
    ("netpol", "a rule without ports", lambda o: ingress(o, "traffic")[0].pop("ports")),
    ("netpol", "no policy at all", lambda o: [o.remove(n) for n in find(o, "NetworkPolicy") if "portcullis" in n["metadata"]["name"]]),
    ("edge", "one replica", lambda o: set_(obj(o, "Deployment", "portcullis")["spec"], "replicas", 1)),
    ("edge", "no PodDisruptionBudget", lambda o: o.remove(obj(o, "PodDisruptionBudget", "portcullis"))),
    ("edge", "no anti-affinity", lambda o: obj(o, "Deployment", "portcullis")["spec"]["template"]["spec"].pop("affinity")),
    ("edge", "no limits", lambda o: container(o, "portcullis")["resources"].pop("limits")),
    ("edge", "the password in plain env", lambda o: set_(container(o, "portcullis")["env"][0], "value", "x")
        or container(o, "portcullis")["env"][0].pop("valueFrom")),
    ("reload", "routes by subPath", lambda o: set_(next(m for m in container(o, "portcullis")["volumeMounts"]
        if m["name"] == "routes"), "subPath", "routes.toml")),
    ("reload", "hashed policies", lambda o: [set_(obj(o, "ConfigMap", "policies")["metadata"], "name", HASHED_NAME),
        set_(vol(o, "policies")["configMap"], "name", HASHED_NAME)]),
]

SIDECAR_BREAKS = [
    ("sidecar", "the app on every address", lambda o: set_(container(o, "app")["args"], 2, "0.0.0.0:8080")),
    ("sidecar", "the app declaring its port", lambda o: set_(container(o, "app"), "ports", [{"containerPort": 8080}])),
    ("sidecar", "a Service onto the app", lambda o: set_(obj(o, "Service", "app")["spec"]["ports"][0], "targetPort", 8080)),
    ("sidecar", "an upstream off loopback", lambda o: set_(container(o, "portcullis")["args"], 4, "http://10.0.0.1:8080")),
    ("nonroot", "the app with capabilities", lambda o: set_(container(o, "app")["securityContext"]["capabilities"], "add", ["NET_ADMIN"])),
    ("public", "the plain sidecar on a LoadBalancer", lambda o: set_(obj(o, "Service", "app")["spec"], "type", "LoadBalancer")),
    ("probes", "liveness on the app's port", lambda o: set_(container(o, "portcullis")["livenessProbe"]["httpGet"], "port", 8000)),
    ("netpol", "management from default", lambda o: set_(ingress(o, "management")[0]["from"][0]["namespaceSelector"],
        "matchLabels", {"kubernetes.io/metadata.name": "default"})),
    ("reload", "policies from an emptyDir", lambda o: vol(o, "policies").update({"emptyDir": {}})
        or vol(o, "policies").pop("configMap")),
]

COMPOSE_BREAKS = [
    ("compose", "MailDev's UI published", lambda d: set_(d["services"]["maildev"], "ports", ["1080:1080"])),
    ("compose", "management published", lambda d: d["services"]["portcullis"]["ports"].append("9000:9000")),
    ("compose", "a random host port", lambda d: set_(d["services"]["postgres"], "ports", ["5432"])),
    ("compose", "443 onto a plain port", lambda d: set_(d["services"]["portcullis"], "ports", [{"target": 9000, "published": 443}])),
    ("compose", "host networking", lambda d: set_(d["services"]["redis"], "network_mode", "host")),
    ("compose", "no Redis", lambda d: d["services"].pop("redis")),
    ("compose", "one demo service", lambda d: d["services"].pop("reports")),
]


def self_test(root):
    """Each doctored copy must fail the named check, and the pristine renders must pass."""
    bad = []
    for overlay, breaks in (("edge", EDGE_BREAKS), ("sidecar", SIDECAR_BREAKS)):
        pristine = render(os.path.join(root, "deploy/kubernetes/overlays", overlay))
        if check_objects(pristine):
            bad.append(f"{overlay}: the pristine render fails: {check_objects(pristine)}")
        for check, what, doctor in breaks:
            objs = copy.deepcopy(pristine)
            doctor(objs)
            got = check_objects(objs)
            if not any(x.startswith(check + ":") for x in got):
                bad.append(f"{overlay}, {what}: check {check} did not fail (got {got})")
            else:
                print(f"ok  {overlay}: {what} → {next(x for x in got if x.startswith(check + ':'))}")
    path = os.path.join(root, "deploy/compose.yaml")
    with open(path) as fh:
        pristine = yaml.safe_load(fh)
    if check_compose(path, pristine):
        bad.append(f"compose: the pristine file fails: {check_compose(path, pristine)}")
    for check, what, doctor in COMPOSE_BREAKS:
        doc = copy.deepcopy(pristine)
        doctor(doc)
        got = check_compose(path, doc)
        if not got:
            bad.append(f"compose, {what}: did not fail")
        else:
            print(f"ok  compose: {what} → {got[0]}")
    return bad


