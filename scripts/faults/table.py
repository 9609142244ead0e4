#!/usr/bin/env python3
"""target/faults/summary.jsonl as the Markdown table of docs/reliability.md."""
import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "target/faults/summary.jsonl"
print("| drill | inbound accepted / lost / dup | replies accepted / lost / dup | webhooks refused | max inbound→stored | back to full rate: accepted / stored / offered / sent |")
print("|---|---|---|---|---|---|")
for line in open(path):
    d = json.loads(line)
    if d.get("injected") is False:
        print(f"| {d['drill']} | **fault not injected: the drill tested nothing** | | | | |")
        continue
    r = d["recovery_s"]
    fmt = lambda v: "–" if v is None else f"{v:.1f} s"
    print(f"| {d['drill']} | {d['inbound_accepted']} / {d['inbound_lost']} / {d['inbound_duplicated']} "
          f"| {d['replies_accepted']} / {d['replies_lost']} / {d['replies_duplicated']} | {d['refused_webhooks']} "
          f"| {d['max_inbound_to_stored_ms']} ms | {fmt(r['accepted'])} / {fmt(r['stored'])} / {fmt(r['offered'])} / {fmt(r['sent'])} |")
