"""Run Emissary 4.1.0's configuration compiler over a set of Kubernetes objects, as diagd does.

Usage: python3 compile.py EMISSARY_SRC OBJECTS.yaml OUT.json

EMISSARY_SRC is python/ambassador/src of Emissary v4.1.0 (../shared/emissary). The objects are fed
as a watt snapshot (what Emissary's Go watcher hands diagd), so Secrets are resolved the way they
are in a pod: the base SecretHandler finds only Secrets present in the snapshot. OUT.json gets
{"envoy": the ADS configuration, "errors": the IR's errors, "notices": its notices}.
"""
import json
import logging
import sys
import tempfile
import types

sys.path.insert(0, sys.argv[1])


class _NoDurationpy(types.ModuleType):
    """durationpy is imported only by the Knative fetcher (not in Debian); ztedge sends no
    Knative objects, so any use of it is a bug in the tier and must fail loudly."""

    def __getattr__(self, name):
        raise RuntimeError("durationpy." + name + " called: the tier feeds no Knative objects")


sys.modules.setdefault("durationpy", _NoDurationpy("durationpy"))

import yaml  # noqa: E402

from ambassador import IR, Config, EnvoyConfig  # noqa: E402
from ambassador.fetch import ResourceFetcher  # noqa: E402
from ambassador.utils import SecretHandler  # noqa: E402


def snapshot(objects):
    """The watt snapshot layout: {"Kubernetes": {Kind: [objects]}}."""
    kube = {}
    for obj in objects:
        kube.setdefault(obj["kind"], []).append(obj)
    return {"Kubernetes": kube, "Consul": {}, "Deltas": []}


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logger = logging.getLogger("ambassador")
    objects = [o for o in yaml.safe_load_all(open(sys.argv[2])) if o]
    aconf = Config()
    fetcher = ResourceFetcher(logger, aconf)
    fetcher.parse_watt(json.dumps(snapshot(objects)))
    aconf.load_all(fetcher.sorted())
    cache_dir = tempfile.mkdtemp(prefix="envoytier-")
    ir = IR(aconf, secret_handler=SecretHandler(logger, cache_dir, cache_dir, "0"))
    econf = EnvoyConfig.generate(ir)
    bootstrap, ads, _ = econf.split_config()
    out = {
        "envoy": ads,
        "bootstrap": bootstrap,
        "errors": aconf.errors,
        "notices": ir.notices if hasattr(ir, "notices") else {},
    }
    json.dump(out, open(sys.argv[3], "w"), default=str, indent=1, sort_keys=True)


main()
