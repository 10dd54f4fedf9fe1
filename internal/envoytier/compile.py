"""Run Emissary 4.1.0's configuration compiler over a set of Kubernetes objects, as diagd does.

Usage: python3 compile.py EMISSARY_SRC IN.json OUT.json

EMISSARY_SRC is python/ambassador/src of Emissary v4.1.0 (../shared/emissary). IN.json is
{"objects": [...], "annotations": {...}, "env": {...}, "podLabels": {...}, "mounts": [...]}: the
objects (and the getambassador.io/config annotations it unfolds) Emissary's Go watcher would hand diagd (tests/emissaryconfig_test.go models which), the environment the chart
gives Emissary's container, the pod's labels (the chart mounts them at
/tmp/ambassador-pod-info/labels) and the directories mounted into the container (a TLSContext
naming a file, e.g. Istio's root certificate, finds it only under one of them).
The objects are fed as a watt snapshot, so Secrets are resolved the way they are in a pod: the
base SecretHandler finds only Secrets present in the snapshot. OUT.json gets {"envoy": the ADS
configuration, "bootstrap": Envoy's bootstrap, "errors": the compiler's errors, "notices": its
notices}.
"""
import json
import logging
import os
import sys
import tempfile
import types

SRC, IN, OUT = sys.argv[1:4]
job = json.load(open(IN))
# Emissary's Config reads its environment at import time (config/config.py).
os.environ.update(job.get("env", {}))
sys.path.insert(0, SRC)


class _NoDurationpy(types.ModuleType):
    """durationpy is imported only by the Knative fetcher (not in Debian); ztedge sends no
    Knative objects, so any use of it is a bug in the tier and must fail loudly."""

    def __getattr__(self, name):
        raise RuntimeError("durationpy." + name + " called: the tier feeds no Knative objects")


sys.modules.setdefault("durationpy", _NoDurationpy("durationpy"))

from ambassador import IR, Config, EnvoyConfig  # noqa: E402
from ambassador.fetch import ResourceFetcher  # noqa: E402
from ambassador.utils import SecretHandler  # noqa: E402


def snapshot(objects, annotations):
    """The watt snapshot layout: {"Kubernetes": {Kind: [objects], "annotations": {parent: [objects]}}}."""
    kube = {}
    for obj in objects:
        kube.setdefault(obj["kind"], []).append(obj)
    kube["annotations"] = annotations or {}
    return {"Kubernetes": kube, "Consul": {}, "Deltas": []}


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logger = logging.getLogger("ambassador")
    aconf = Config()
    fetcher = ResourceFetcher(logger, aconf)
    # The downward-API file the chart mounts; here the labels come with the job.
    fetcher.load_pod_labels = lambda: aconf.pod_labels.update(job.get("podLabels", {})) or True
    fetcher.parse_watt(json.dumps(snapshot(job["objects"], job.get("annotations"))))
    aconf.load_all(fetcher.sorted())
    cache_dir = tempfile.mkdtemp(prefix="envoytier-")
    mounts = [m.rstrip("/") + "/" for m in job.get("mounts") or []]
    in_pod = lambda path: path.startswith(cache_dir) or any(path.startswith(m) for m in mounts)  # noqa: E731
    ir = IR(aconf, file_checker=in_pod, secret_handler=SecretHandler(logger, cache_dir, cache_dir, "0"))
    econf = EnvoyConfig.generate(ir)
    bootstrap, ads, _ = econf.split_config()
    out = {
        "envoy": ads,
        "bootstrap": bootstrap,
        "errors": aconf.errors,
        "notices": getattr(aconf, "notices", {}),
    }
    json.dump(out, open(OUT, "w"), default=str, indent=1, sort_keys=True)


main()
