#!/usr/bin/env python3
"""In-process speed of sigstore-python's offline verifier, for `provmesh bench verify`.

`provmesh bench verify --compare-sigstore-python` writes a bundle, its artifact and the
ClientTrustConfig it verifies under to a temporary directory, then runs this script with
the pinned venv's interpreter (scripts/setup-verifiers) to measure, in the same run,
what stock sigstore-python does with the same inputs:

  * `verify`: `Verifier.verify_artifact(artifact, bundle, policy)` in a loop on a bundle
    parsed once -- the call the project's goal compares against ("in-process
    Verifier.verify_artifact");
  * `parse_and_verify`: `Bundle.from_json` then `verify_artifact` in a loop, which is what
    `provmesh_protocol::verify::PreparedTrust::verify_bundle` does per call (it takes the
    bundle's JSON).

The Verifier is built once from the trusted root (what `PreparedTrust::new` corresponds
to), and the policy is `Identity(identity=..., issuer=...)`, as
`sigstore verify identity --cert-identity ... --cert-oidc-issuer ...` builds it. Every
call must succeed: a failure raises, so no rate is printed for a verification that fails.

Prints one JSON object on stdout.

usage: bench-sigstore-python.py --trust-config CFG --bundle B --artifact A
                                --identity ID --issuer ISS [--seconds S]
"""

import argparse
import json
import sys
import time
from importlib.metadata import version

from sigstore.models import Bundle, ClientTrustConfig
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity


def timed(seconds, step):
    """Runs `step` until `seconds` have passed; returns (calls, elapsed seconds)."""
    start = time.perf_counter()
    count = 0
    while True:
        step()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trust-config", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if not 0 < args.seconds <= 3600:
        parser.error("--seconds must be more than 0 and at most 3600")

    with open(args.trust_config, encoding="utf-8") as f:
        config = ClientTrustConfig.from_json(f.read())
    with open(args.bundle, encoding="utf-8") as f:
        bundle_json = f.read()
    with open(args.artifact, "rb") as f:
        artifact = f.read()
    verifier = Verifier(trusted_root=config.trusted_root)
    policy = Identity(identity=args.identity, issuer=args.issuer)
    bundle = Bundle.from_json(bundle_json)

    def verify():
        verifier.verify_artifact(artifact, bundle, policy)

    def parse_and_verify():
        verifier.verify_artifact(artifact, Bundle.from_json(bundle_json), policy)

    # Warm-up, as the Rust loops have: a tenth of the time, at most half a second.
    warmup = min(args.seconds / 10, 0.5)
    timed(warmup, verify)
    verifies, elapsed = timed(args.seconds, verify)
    timed(warmup, parse_and_verify)
    parse_verifies, parse_elapsed = timed(args.seconds, parse_and_verify)

    json.dump(
        {
            "sigstore_version": version("sigstore"),
            "python_version": sys.version.split()[0],
            "seconds": elapsed,
            "verifies": verifies,
            "verifies_per_sec": verifies / elapsed,
            "parse_seconds": parse_elapsed,
            "parse_verifies": parse_verifies,
            "parse_verifies_per_sec": parse_verifies / parse_elapsed,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
