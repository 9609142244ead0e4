#!/usr/bin/env bash
# Cross-checks the emulator's Messages API against Stoplight Prism serving Twilio's OpenAPI spec
# (reference/twilio.md §8). Needs Node and the npm registry; installs Prism under scratch/prism.
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${TWILIO_SPEC:-../shared/reference/twilio_api_v2010.json}
mkdir -p scratch/prism
if [ ! -x scratch/prism/node_modules/.bin/prism ]; then
  (cd scratch/prism && npm init -y >/dev/null && npm install --silent @stoplight/prism-cli@5 >/dev/null)
fi
# Prism reads repeated form keys only when the spec names an encoding style (twilio.md §8.2).
python3 - "$spec" scratch/prism/twilio_api_v2010.prism.json <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
c = s['paths']['/2010-04-01/Accounts/{AccountSid}/Messages.json']['post']['requestBody']['content']['application/x-www-form-urlencoded']
c['encoding'] = {'MediaUrl': {'style': 'form', 'explode': True}, 'PersistentAction': {'style': 'form', 'explode': True}}
json.dump(s, open(sys.argv[2], 'w'))
PY
scratch/prism/node_modules/.bin/prism mock -h 127.0.0.1 -p 4010 --errors scratch/prism/twilio_api_v2010.prism.json >/tmp/prism.log 2>&1 &
prism=$!
trap 'kill $prism 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/4010) 2>/dev/null && break; sleep 0.2; done
cargo run -q -p switchboard-twilio-emulator --example prism_contract -- http://127.0.0.1:4010
