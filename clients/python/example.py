"""Reads features from a running Eddy cluster and prints them as JSON, one object per entity.

    ./generate.sh                      # the stubs, once (see README.md)
    python3 example.py --address 127.0.0.1:7070 --job customer-experience \
        --features indicators,received --ids e1,e2,e3
"""

import argparse
import json

from eddy_client import FeatureClient


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default="127.0.0.1:7070")
    parser.add_argument("--job", required=True)
    parser.add_argument("--features", required=True, help="comma-separated feature names")
    parser.add_argument("--ids", required=True, help="comma-separated entity ids")
    parser.add_argument("--view", choices=["latest", "committed"], default="latest")
    parser.add_argument("--as-of-ms", type=int, default=None, help="event time (ms since the epoch) for an as-of read")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds")
    parser.add_argument("--with-times", action="store_true", help="each value with its event time and checkpoint")
    parser.add_argument("--direct", action="store_true", help="read from the owning workers (their --serve endpoints) by the job's serving map")
    args = parser.parse_args()
    with FeatureClient(args.address, direct=args.direct) as client:
        read = client.get_features_with_times if args.with_times else client.get_features
        rows = read(args.job, args.features.split(","), args.ids.split(","), view=args.view, as_of_ms=args.as_of_ms, timeout=args.timeout)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
