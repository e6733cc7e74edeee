"""A thin Python client for Eddy's feature serving (eddy.v2.FeatureService).

    from eddy_client import FeatureClient
    with FeatureClient("127.0.0.1:7070") as client:
        rows = client.get_features("customer-experience", ["indicators", "received"], ["e1", "e2"])
        # [{"entity_id": "e1", "indicators": {...}, "received": 12}, {"entity_id": "e2", ...}]

The stubs are generated from the repository's proto/ by generate.sh (into ./gen, or the
directory in EDDY_PYTHON_STUBS). Values come back as plain Python values (dict, list, str, float,
bool, None); a feature with no state for an entity is None.

Errors: grpc.RpcError. UNAVAILABLE means a key group is moving or recovering, or the job is being
redeployed: get_features retries it after the server's hint (the "retry-after-ms" trailer, the same
delay as google.rpc.RetryInfo in grpc-status-details-bin) while the call's timeout allows.
DEADLINE_EXCEEDED is not retried: the same timeout would fail the same way.
"""

import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("EDDY_PYTHON_STUBS", os.path.join(_HERE, "gen")))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from eddy.v2 import feature_service_pb2 as pb  # noqa: E402
from eddy.v2 import feature_service_pb2_grpc as pb_grpc  # noqa: E402

_VIEWS = {"latest": pb.VIEW_LATEST, "committed": pb.VIEW_COMMITTED}


def _retry_after_seconds(error):
    """The server's retry hint of an UNAVAILABLE error, in seconds (None: no hint)."""
    for key, value in error.trailing_metadata() or ():
        if key == "retry-after-ms":
            return int(value) / 1000.0
    return None


class FeatureClient:
    """A channel to one Eddy coordinator (or a load balancer in front of several)."""

    def __init__(self, address, credentials=None, token=None):
        self._channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
        self._stub = pb_grpc.FeatureServiceStub(self._channel)
        self._metadata = (("authorization", "Bearer " + token),) if token else None

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def get_features_response(self, job, features, ids, view="latest", as_of_ms=None, timeout=1.0):
        """The raw GetFeaturesResponse (typed protobuf), retried on UNAVAILABLE within timeout."""
        request = pb.GetFeaturesRequest(job_id=job, features=list(features), entity_ids=list(ids), view=_VIEWS[view])
        if as_of_ms is not None:
            request.as_of.FromMilliseconds(int(as_of_ms))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                return self._stub.GetFeatures(request, timeout=max(remaining, 0.001), metadata=self._metadata)
            except grpc.RpcError as error:
                hint = _retry_after_seconds(error) if error.code() == grpc.StatusCode.UNAVAILABLE else None
                if hint is None or time.monotonic() + hint >= deadline:
                    raise
                time.sleep(hint)

    def get_features(self, job, features, ids, view="latest", as_of_ms=None, timeout=1.0):
        """One dict per id, in order: {"entity_id": id, <feature>: value or None, ...}."""
        response = self.get_features_response(job, features, ids, view, as_of_ms, timeout)
        rows = []
        for row in response.rows:
            out = {"entity_id": row.entity_id}
            for value in row.values:
                out[value.feature] = json_format.MessageToDict(value.value) if value.found else None
            rows.append(out)
        return rows

    def get_features_with_times(self, job, features, ids, view="latest", as_of_ms=None, timeout=1.0):
        """Like get_features, each value as {"value": v, "event_time_ms": t or None, "checkpoint_id": n}."""
        response = self.get_features_response(job, features, ids, view, as_of_ms, timeout)
        rows = []
        for row in response.rows:
            out = {"entity_id": row.entity_id}
            for value in row.values:
                out[value.feature] = {
                    "value": json_format.MessageToDict(value.value) if value.found else None,
                    "event_time_ms": value.event_time.ToMilliseconds() if value.HasField("event_time") else None,
                    "checkpoint_id": value.checkpoint_id,
                }
            rows.append(out)
        return rows


def get_features(address, job, features, ids, **options):
    """One call on a fresh channel (a script's one-off read; keep a FeatureClient for a service)."""
    with FeatureClient(address) as client:
        return client.get_features(job, features, ids, **options)
