#!/usr/bin/env python3
"""An independent check of a webhook signature with twilio-python's RequestValidator.

Reads JSON on stdin: {"url", "params": [[name, value], ...], "signature", "settings" (the
X-Twilio-Webhooks-Signature-Settings header, or null), "secret"}. Prints "valid" or "invalid"
and exits 0 or 1. Used by crates/cli/tests/e2e/shared_keys.rs; needs the venv that
scripts/ensure-services.sh makes (target/twilio-venv, twilio==9.13.0).
"""
import json
import sys

from twilio.request_validator import RequestValidator, get_signature_algorithm

request = json.load(sys.stdin)
params = {name: value for name, value in request["params"]}
algorithm = get_signature_algorithm(request.get("settings"))
ok = RequestValidator(request["secret"]).validate(request["url"], params, request["signature"], algorithm)
print("valid" if ok else "invalid", algorithm)
sys.exit(0 if ok else 1)
