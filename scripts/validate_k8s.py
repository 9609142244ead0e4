"""Validates rendered Kubernetes manifests offline (see validate-k8s.sh)."""
import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "k8s" / "schemas"
K8S_VERSION = "1.32.0"


def house_rules(doc):
    """What every Switchboard workload must have."""
    problems = []
    if doc.get("kind") != "Deployment" or doc["metadata"].get("labels", {}).get("app.kubernetes.io/name") != "switchboard":
        return problems
    pod = doc["spec"]["template"]["spec"]
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append("pod must run as non-root")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        for key, want in [("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False)]:
            if sc.get(key) is not want:
                problems.append(f"container {c['name']}: securityContext.{key} must be {want}")
        for probe in ["readinessProbe", "livenessProbe"]:
            if probe not in c:
                problems.append(f"container {c['name']}: missing {probe}")
        res = c.get("resources", {})
        if "requests" not in res or "memory" not in res.get("limits", {}):
            problems.append(f"container {c['name']}: needs requests and a memory limit")
        if "preStop" not in c.get("lifecycle", {}):
            problems.append(f"container {c['name']}: needs a preStop pause")
    if pod.get("terminationGracePeriodSeconds", 30) <= 25:
        problems.append("terminationGracePeriodSeconds must exceed the drain timeout (20 s) plus preStop")
    return problems


def main(paths):
    failures = 0
    checked = 0
    for path in paths:
        for doc in yaml.safe_load_all(pathlib.Path(path).read_text()):
            if not doc:
                continue
            checked += 1
            where = f"{pathlib.Path(path).name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            schema_file = SCHEMAS / f"{doc.get('kind')}.json"
            try:
                if "." in doc.get("apiVersion", "").split("/")[0] and schema_file.exists() and not doc["apiVersion"].startswith(("apps/", "batch/", "policy/", "autoscaling/", "networking.k8s.io/")):
                    jsonschema.validate(doc, json.loads(schema_file.read_text()))
                else:
                    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                print(f"FAIL {where}: no schema for {doc.get('apiVersion')} {doc.get('kind')}")
                failures += 1
                continue
            except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as e:
                print(f"FAIL {where}: {getattr(e, 'message', e)}")
                failures += 1
                continue
            for problem in house_rules(doc):
                print(f"FAIL {where}: {problem}")
                failures += 1
    print(f"validate-k8s: {checked} manifests checked, {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
