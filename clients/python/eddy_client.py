"""A thin Python client for Eddy's feature serving (eddy.v2.FeatureService).

    from eddy_client import FeatureClient
    with FeatureClient("127.0.0.1:7070") as client:
        rows = client.get_features("customer-experience", ["indicators", "received"], ["e1", "e2"])
        # [{"entity_id": "e1", "indicators": {...}, "received": 12}, {"entity_id": "e2", ...}]

The stubs are generated from the repository's proto/ by generate.sh (into ./gen, or the
directory in EDDY_PYTHON_STUBS). Values come back as plain Python values (dict, list, str, float,
bool, None); a feature with no state for an entity is None. get_features asks for the values as
JSON text (VALUE_FORMAT_JSON) and reads them with json.loads: converting a google.protobuf.Value
with json_format.MessageToDict costs ~13 times more per value.

Direct reads: FeatureClient(address, direct=True) keeps each job's serving map (GetServingMap on the
coordinator: which worker owns which key groups, and the address of its --serve endpoint) and sends
each owner the ids it owns, with the map's epoch in the "eddy-serving-epoch" header. An owner that
no longer serves a key group (a move, a recovery) answers UNAVAILABLE: the client fetches the map
again and retries within the timeout, so it never returns a stale value.

Errors: grpc.RpcError. UNAVAILABLE means a key group is moving or recovering, or the job is being
redeployed: get_features retries it after the server's hint (the "retry-after-ms" trailer, the same
delay as google.rpc.RetryInfo in grpc-status-details-bin) while the call's timeout allows.
DEADLINE_EXCEEDED is not retried: the same timeout would fail the same way.
"""

import json
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("EDDY_PYTHON_STUBS", os.path.join(_HERE, "gen")))

import grpc  # noqa: E402
from eddy.v2 import feature_service_pb2 as pb  # noqa: E402
from eddy.v2 import feature_service_pb2_grpc as pb_grpc  # noqa: E402

_VIEWS = {"latest": pb.VIEW_LATEST, "committed": pb.VIEW_COMMITTED}
_FORMATS = {"struct": pb.VALUE_FORMAT_STRUCT, "json": pb.VALUE_FORMAT_JSON}


def key_group(entity_id, max_parallelism):
    """The key group of an entity id: murmur3_32 (seed 0) of its UTF-8 bytes, mod max_parallelism."""
    data = entity_id.encode("utf-8", "replace")
    h = 0
    rounded = len(data) & ~3
    for i in range(0, rounded, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * 0xCC9E2D51) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * 0x1B873593) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[rounded:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * 0xCC9E2D51) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * 0x1B873593) & 0xFFFFFFFF
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h % max_parallelism


def _retry_after_seconds(error):
    """The server's retry hint of an UNAVAILABLE error, in seconds (None: no hint)."""
    for key, value in error.trailing_metadata() or ():
        if key == "retry-after-ms":
            return int(value) / 1000.0
    return None


class FeatureClient:
    """A channel to one Eddy coordinator (or a load balancer in front of several)."""

    def __init__(self, address, credentials=None, token=None, direct=False, worker_credentials=None):
        self._credentials = credentials
        self._channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
        self._stub = pb_grpc.FeatureServiceStub(self._channel)
        self._metadata = (("authorization", "Bearer " + token),) if token else None
        self._direct = direct
        self._worker_credentials = worker_credentials or credentials
        self._maps = {}
        self._workers = {}

    def close(self):
        self._channel.close()
        for channel, _ in self._workers.values():
            channel.close()
        self._workers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def get_features_response(self, job, features, ids, view="latest", as_of_ms=None, timeout=1.0, value_format="struct"):
        """The raw GetFeaturesResponse, retried on UNAVAILABLE within timeout. value_format "struct":
        each value in value (google.protobuf.Value); "json": in value_json (JSON text)."""
        request = pb.GetFeaturesRequest(job_id=job, features=list(features), entity_ids=list(ids), view=_VIEWS[view], value_format=_FORMATS[value_format])
        if as_of_ms is not None:
            request.as_of.FromMilliseconds(int(as_of_ms))
        deadline = time.monotonic() + timeout
        if self._direct:
            return self._directly(request, deadline)
        while True:
            remaining = deadline - time.monotonic()
            try:
                return self._stub.GetFeatures(request, timeout=max(remaining, 0.001), metadata=self._metadata)
            except grpc.RpcError as error:
                hint = _retry_after_seconds(error) if error.code() == grpc.StatusCode.UNAVAILABLE else None
                if hint is None or time.monotonic() + hint >= deadline:
                    raise
                time.sleep(hint)

    def _serving_map(self, job, deadline):
        """(epoch, max_parallelism, address per key group), fetched from the coordinator once per job."""
        routing = self._maps.get(job)
        if routing is None:
            m = self._stub.GetServingMap(pb.GetServingMapRequest(job_id=job), timeout=max(deadline - time.monotonic(), 0.001), metadata=self._metadata)
            address_of = [""] * m.max_parallelism
            for owner in m.owners:
                for r in owner.key_groups:
                    for kg in range(r.start, r.end + 1):
                        address_of[kg] = owner.address
            routing = (str(m.epoch), m.max_parallelism, address_of)
            self._maps[job] = routing
        return routing

    def _worker_stub(self, address):
        entry = self._workers.get(address)
        if entry is None:
            creds = self._worker_credentials
            channel = grpc.secure_channel(address, creds) if creds else grpc.insecure_channel(address)
            entry = (channel, pb_grpc.FeatureServiceStub(channel))
            self._workers[address] = entry
        return entry[1]

    def _directly(self, request, deadline):
        """Each owner asked for its ids; any UNAVAILABLE drops the map, which is fetched again."""
        delay = 0.01
        while True:
            try:
                epoch, max_parallelism, address_of = self._serving_map(request.job_id, deadline)
                parts = {}
                for entity_id in dict.fromkeys(request.entity_ids):
                    parts.setdefault(address_of[key_group(entity_id, max_parallelism)], []).append(entity_id)
                rows = {}
                for address, part_ids in parts.items():
                    part = pb.GetFeaturesRequest()
                    part.CopyFrom(request)
                    del part.entity_ids[:]
                    part.entity_ids.extend(part_ids)
                    remaining = max(deadline - time.monotonic(), 0.001)
                    if address == "":
                        response = self._stub.GetFeatures(part, timeout=remaining, metadata=self._metadata)
                    else:
                        metadata = (self._metadata or ()) + (("eddy-serving-epoch", epoch),)
                        response = self._worker_stub(address).GetFeatures(part, timeout=remaining, metadata=metadata)
                    for row in response.rows:
                        rows[row.entity_id] = row
                return pb.GetFeaturesResponse(rows=[rows[entity_id] for entity_id in request.entity_ids])
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                self._maps.pop(request.job_id, None)
                wait = _retry_after_seconds(error) or delay
                delay = min(delay * 2, 0.2)
                if time.monotonic() + wait >= deadline:
                    raise
                time.sleep(wait)

    def get_features(self, job, features, ids, view="latest", as_of_ms=None, timeout=1.0):
        """One dict per id, in order: {"entity_id": id, <feature>: value or None, ...}."""
        response = self.get_features_response(job, features, ids, view, as_of_ms, timeout, "json")
        rows = []
        for row in response.rows:
            out = {"entity_id": row.entity_id}
            for value in row.values:
                out[value.feature] = json.loads(value.value_json) if value.found else None
            rows.append(out)
        return rows

    def get_features_with_times(self, job, features, ids, view="latest", as_of_ms=None, timeout=1.0):
        """Like get_features, each value as {"value": v, "event_time_ms": t or None, "checkpoint_id": n}."""
        response = self.get_features_response(job, features, ids, view, as_of_ms, timeout, "json")
        rows = []
        for row in response.rows:
            out = {"entity_id": row.entity_id}
            for value in row.values:
                out[value.feature] = {
                    "value": json.loads(value.value_json) if value.found else None,
                    "event_time_ms": value.event_time.ToMilliseconds() if value.HasField("event_time") else None,
                    "checkpoint_id": value.checkpoint_id,
                }
            rows.append(out)
        return rows


def get_features(address, job, features, ids, **options):
    """One call on a fresh channel (a script's one-off read; keep a FeatureClient for a service)."""
    with FeatureClient(address) as client:
        return client.get_features(job, features, ids, **options)
