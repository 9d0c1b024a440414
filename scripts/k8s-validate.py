#!/usr/bin/env python3
"""Offline validation of deploy/kubernetes/ (no cluster, no network).

1. Renders the kustomizations (base and overlays/*) the way `kubectl apply -k`
   does for the subset they use: `resources` (files and directories) and
   `patches` with a kind/name target and JSON 6902 operations (add, replace,
   remove). Any other kustomize field is an error here, so a manifest this
   renderer would misread cannot pass. Where `kubectl` is installed, its own
   `kubectl kustomize` output must be the same objects.
2. Validates every rendered object against the Kubernetes JSON schemas that the
   PyPI package `kubernetes-validate` ships (strict: unknown fields fail), for
   the oldest and the newest Kubernetes version it knows (SCHEMA_VERSIONS).
3. Checks what a schema cannot: selectors match the pod labels, the HPA scales
   this Deployment on a metric the Prometheus adapter values define, the probes
   hit /health on the named port, terminationGracePeriodSeconds covers the
   preStop sleep plus --shutdown-grace, the pod's user and model cache are the
   image's (from the Dockerfile), and each GPU overlay asks for its device
   plugin's resource.

Usage: k8s-validate.py [--out DIR]   (DIR receives the rendered YAML, one file per
kustomization). Needs PyYAML and kubernetes-validate (scripts/docker-test.sh
installs them into its venv). Exit status 0 when everything passes.
"""

import argparse
import pathlib
import re
import shutil
import subprocess
import sys

import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
SCHEMA_VERSIONS = ["1.25.0", "1.37.0"]
GPU_RESOURCES = {"amd": "amd.com/gpu", "intel": "gpu.intel.com/i915", "nvidia": "nvidia.com/gpu"}


class Fail(Exception):
    pass


def load_docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def pointer(path):
    if not path.startswith("/"):
        raise Fail(f"JSON pointer {path!r} must start with /")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def apply_op(doc, op):
    kind, tokens = op.get("op"), pointer(op.get("path", ""))
    parent = doc
    for t in tokens[:-1]:
        parent = parent[int(t)] if isinstance(parent, list) else parent[t]
    last = tokens[-1]
    if isinstance(parent, list):
        if kind == "add":
            if last == "-":
                parent.append(op["value"])
            else:
                parent.insert(int(last), op["value"])
        elif kind == "replace":
            parent[int(last)] = op["value"]
        elif kind == "remove":
            del parent[int(last)]
        else:
            raise Fail(f"unsupported patch op {kind!r}")
    else:
        if kind == "add":
            parent[last] = op["value"]
        elif kind in ("replace", "remove"):
            if last not in parent:
                raise Fail(f"{kind} {op['path']}: no such field")
            if kind == "replace":
                parent[last] = op["value"]
            else:
                del parent[last]
        else:
            raise Fail(f"unsupported patch op {kind!r}")


def render(directory):
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(k) - {"apiVersion", "kind", "resources", "patches"}
    if unknown:
        raise Fail(f"{directory}: kustomize fields this renderer does not know: {sorted(unknown)}")
    docs = []
    for r in k.get("resources", []):
        p = (directory / r).resolve()
        docs += render(p) if p.is_dir() else load_docs(p)
    for patch in k.get("patches", []):
        if set(patch) - {"target", "patch"} or set(patch["target"]) - {"kind", "name"}:
            raise Fail(f"{directory}: only patches with a kind/name target and inline JSON 6902 ops")
        t = patch["target"]
        hits = [d for d in docs if d["kind"] == t["kind"] and d["metadata"]["name"] == t["name"]]
        if not hits:
            raise Fail(f"{directory}: patch target {t} matches nothing")
        for d in hits:
            for op in yaml.safe_load(patch["patch"]):
                try:
                    apply_op(d, op)
                except (KeyError, IndexError, ValueError) as e:
                    raise Fail(f"{directory}: patch {op} does not apply: {e!r}") from e
    return docs


def keyed(docs):
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def dockerfile_facts():
    text = (ROOT / "Dockerfile").read_text()
    uid = re.search(r"^ARG UID=(\d+)", text, re.M)
    cache = re.search(r"VKWHISPER_CACHE=(\S+)", text)
    port = re.search(r"VKWHISPER_PORT=(\d+)", text)
    if not (uid and cache and port):
        raise Fail("Dockerfile: cannot find ARG UID, VKWHISPER_CACHE or VKWHISPER_PORT")
    return int(uid.group(1)), cache.group(1), int(port.group(1))


def adapter_metrics():
    values = yaml.safe_load((K8S / "prometheus-adapter" / "values.yaml").read_text())
    return {r["name"]["as"] for r in values["rules"]["custom"]}


def arg_value(args, flag):
    for a in args:
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def semantic_checks(name, docs, check):
    objs = keyed(docs)
    kinds = sorted(k for k, _ in objs)
    check(kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"],
          f"the four objects (got {kinds})")
    dep = objs[("Deployment", "vkwhisper")]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]

    def selects(sel):
        return all(labels.get(k) == v for k, v in sel.items())

    check(selects(dep["spec"]["selector"]["matchLabels"]), "the Deployment's selector matches its pods")
    check(selects(objs[("Service", "vkwhisper")]["spec"]["selector"]), "the Service selects the pods")
    check(selects(objs[("PodDisruptionBudget", "vkwhisper")]["spec"]["selector"]["matchLabels"]),
          "the PodDisruptionBudget selects the pods")

    uid, cache, port = dockerfile_facts()
    spec = pod["spec"]
    (c,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports.get("http") == port, f"container port 'http' is the image's {port}")
    check(objs[("Service", "vkwhisper")]["spec"]["ports"][0]["targetPort"] in ports,
          "the Service targets a named container port")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        g = c.get(probe, {}).get("httpGet", {})
        check(g.get("path") == "/health" and g.get("port") == "http", f"{probe} is GET /health on 'http'")
    sc = spec["securityContext"]
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == uid,
          f"runs as non-root uid {uid} (the image's)")
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    check(cache in mounts, f"a volume at the image's model cache {cache}")
    if c.get("securityContext", {}).get("readOnlyRootFilesystem"):
        check("/tmp" in mounts, "a writable /tmp (uploads are spooled there) with a read-only root")

    grace = arg_value(c["args"], "--shutdown-grace")
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_s = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
    total = spec.get("terminationGracePeriodSeconds", 30)
    check(grace is not None and total >= pre_s + int(grace) + 1,
          f"terminationGracePeriodSeconds {total} >= preStop {pre_s} s + --shutdown-grace {grace} s + 1")

    hpa = objs[("HorizontalPodAutoscaler", "vkwhisper")]["spec"]
    ref = hpa["scaleTargetRef"]
    check(ref["kind"] == "Deployment" and ref["name"] == "vkwhisper", "the HPA scales this Deployment")
    check(1 <= hpa.get("minReplicas", 1) <= hpa["maxReplicas"], "HPA minReplicas <= maxReplicas")
    known = adapter_metrics()
    pods_metrics = [m["pods"]["metric"]["name"] for m in hpa["metrics"] if m["type"] == "Pods"]
    check(pods_metrics and all(m in known for m in pods_metrics),
          f"the HPA's Pods metrics {pods_metrics} are defined by the adapter values ({sorted(known)})")
    check(any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["metrics"]),
          "the HPA falls back to CPU")
    check("cpu" in c["resources"].get("requests", {}), "a CPU request (the HPA's CPU utilisation needs it)")

    limits = c["resources"].get("limits", {})
    want = GPU_RESOURCES.get(name)
    for overlay, res in GPU_RESOURCES.items():
        if overlay == name:
            check(str(limits.get(res)) == "1", f"one {res} per pod")
        else:
            check(res not in limits, f"no {res}")
    if want:
        check(arg_value(c["args"], "--device") == "vulkan", "--device=vulkan (fail at start without a GPU)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, help="write the rendered YAML here")
    a = ap.parse_args()

    passed, failed = 0, 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"  FAIL: {what}", file=sys.stderr)

    targets = [("base", K8S / "base")] + [
        (p.name, p) for p in sorted((K8S / "overlays").iterdir()) if (p / "kustomization.yaml").exists()
    ]
    kubectl = shutil.which("kubectl")
    for name, directory in targets:
        print(f"k8s-validate: {directory.relative_to(ROOT)}", file=sys.stderr)
        try:
            docs = render(directory)
        except Fail as e:
            check(False, str(e))
            continue
        if a.out:
            a.out.mkdir(parents=True, exist_ok=True)
            (a.out / f"{name}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
        for d in docs:
            for v in SCHEMA_VERSIONS:
                try:
                    kubernetes_validate.validate(d, v, strict=True)
                    check(True, "")
                except Exception as e:  # ValidationError, SchemaNotFoundError
                    msg = getattr(e, "message", str(e))
                    path = "/".join(str(p) for p in getattr(e, "path", []))
                    check(False, f"{d['kind']}/{d['metadata']['name']} against Kubernetes {v}: {msg} at {path}")
        try:
            semantic_checks(name, docs, check)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            check(False, f"missing field: {e!r}")
        if kubectl:
            r = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
            check(r.returncode == 0 and keyed(list(yaml.safe_load_all(r.stdout))) == keyed(docs),
                  f"`kubectl kustomize {directory.relative_to(ROOT)}` gives the same objects as this renderer")
    if not kubectl:
        print("k8s-validate: kubectl not installed: the renderer is not compared with `kubectl kustomize`",
              file=sys.stderr)
    print(f"k8s-validate: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
