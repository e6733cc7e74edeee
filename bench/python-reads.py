"""Feature reads from Python (bench/python-client.ts runs this): sequential calls for a few seconds
each, values as google.protobuf.Value converted with json_format.MessageToDict (what get_features
did before VALUE_FORMAT_JSON) against JSON text read with json.loads (what it does now), through
the coordinator and directly from the owner; Redis MGET/GET of the same values from redis-py as the
baseline. Prints one JSON object per line: {"name", "calls", "keys_per_s", "p50_ms", "p99_ms"}.

    python3 python-reads.py <coordinator> <job> <feature> <seconds> <batch> <redis port or 0> <ids...>
"""

import json
import sys
import time

from eddy_client import FeatureClient
from google.protobuf import json_format


def measure(name, seconds, batch, call):
    latencies = []
    end = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < end:
        t = time.monotonic()
        call()
        latencies.append((time.monotonic() - t) * 1000)
    elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))]
    print(json.dumps({"name": name, "calls": len(latencies), "keys_per_s": len(latencies) * batch / elapsed, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}), flush=True)


def main():
    address, job, feature, seconds, batch, redis_port = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    ids = sys.argv[7:]
    batches = [ids[i:i + batch] for i in range(0, len(ids) - batch + 1, batch)]
    state = {"n": 0}

    def next_ids():
        state["n"] += 1
        return batches[state["n"] % len(batches)]

    def struct_read(client):
        # get_features before VALUE_FORMAT_JSON: each value converted from google.protobuf.Value.
        response = client.get_features_response(job, [feature], next_ids(), value_format="struct", timeout=5.0)
        return [{value.feature: json_format.MessageToDict(value.value) if value.found else None for value in row.values} for row in response.rows]

    for mode, direct in (("coordinator", False), ("direct", True)):
        with FeatureClient(address, direct=direct) as client:
            for _ in range(20):  # warm: channels, the serving map
                client.get_features(job, [feature], next_ids(), timeout=5.0)
            measure(f"{mode} struct", seconds, batch, lambda: struct_read(client))
            measure(f"{mode} json", seconds, batch, lambda: client.get_features(job, [feature], next_ids(), timeout=5.0))
    if redis_port:
        import redis
        r = redis.Redis(host="127.0.0.1", port=redis_port)
        if batch == 1:
            measure("redis GET + json.loads", seconds, batch, lambda: [json.loads(v) for v in [r.get(next_ids()[0])]])
        else:
            measure("redis MGET + json.loads", seconds, batch, lambda: [json.loads(v) for v in r.mget(next_ids())])


if __name__ == "__main__":
    main()
