#!/usr/bin/env python3
"""Recovery time after a fault, from a loadgen report's per-second series.

usage: recovery.py REPORT.json FAULT_START_UNIX [NAME]

For each series (webhooks accepted, messages stored, first offers, replies sent) the rate
before the fault is the median of the seconds from 3 s after the load started to the fault.
The series has recovered once no later 3-second window of the load falls below 80 % of that
rate; the recovery time is counted from the fault. Prints one JSON line.
"""
import json
import statistics
import sys


def recovery(series, start, end, fault):
    counts = dict((int(s), int(n)) for s, n in series)
    before = [counts.get(s, 0) for s in range(start + 3, int(fault))]
    if not before:
        return None, None
    rate = statistics.median(before)
    # Three-second windows: a stall of a few hundred ms moves requests into the next second.
    window = lambda s: sum(counts.get(t, 0) for t in range(s, s + 3)) / 3
    bad = [s for s in range(int(fault), end - 3) if window(s) < 0.8 * rate]
    return rate, (bad[-1] + 1 - fault if bad else 0.0)


def main():
    report = json.load(open(sys.argv[1]))
    fault = float(sys.argv[2])
    name = sys.argv[3] if len(sys.argv) > 3 else sys.argv[1]
    accepted = report["accepted_per_second"]
    start = int(accepted[0][0]) if accepted else int(fault)
    end = start + int(report["duration_s"])
    check = report["check"]
    out = {"drill": name, "ok": report["ok"],
           "inbound_accepted": check["inbound_accepted"], "inbound_lost": check["inbound_lost"],
           "inbound_duplicated": check["inbound_duplicated"], "replies_accepted": check["replies_accepted"],
           "replies_lost": check["replies_lost"], "replies_duplicated": check["replies_duplicated"],
           "refused_webhooks": sum(n for s, n in report["statuses"].items() if s != "200"),
           "max_inbound_to_stored_ms": round(check["inbound_to_stored"]["max_ms"]),
           "recovery_s": {}}
    for key, series in [("accepted", accepted), ("stored", check["stored_per_second"]),
                        ("offered", check["offered_per_second"]), ("sent", report["sent_per_second"])]:
        rate, secs = recovery(series, start, end, fault)
        out["recovery_s"][key] = None if secs is None else round(secs, 1)
    print(json.dumps(out))


main()
