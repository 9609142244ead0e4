#!/usr/bin/env bash
# Renders every Kustomize target under deploy/k8s and validates each manifest offline:
# core kinds against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields
# are errors), operator kinds (KEDA, RabbitMQ Cluster Operator, CloudNativePG) against the
# schemas of the fields we use in deploy/k8s/schemas/. Needs kubectl (for kustomize) and Python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VALIDATE_VENV:-target/validate-venv}"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0"
fi
if ! command -v kubectl >/dev/null; then
  echo "validate-k8s: kubectl is needed to render the kustomizations (apt-get install kubernetes-client)" >&2
  exit 1
fi
# The dev overlay's secrets are generated at deploy time, never committed: make a set to render.
bash deploy/k8s/overlays/dev/generate-secrets.sh >/dev/null
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for target in deploy/k8s/base deploy/k8s/overlays/dev deploy/k8s/overlays/prod deploy/k8s/overlays/prod-mtls; do
  name="$(echo "$target" | tr '/' '_')"
  kubectl kustomize "$target" > "$out/$name.yaml"
done
"$venv/bin/python" scripts/validate_k8s.py "$out"/*.yaml
