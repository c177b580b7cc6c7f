#!/usr/bin/env python3
"""Reference QRS detectors from PyPI on the same MIT-BIH records as Vigil, scored by the same
code (`vigil eval`, ANSI/AAMI EC57, 150 ms window), and their speed against Vigil's.

Run through bench/ecg_baselines.sh, which creates bench/.venv (git-ignored) with NeuroKit2 and
wfdb. This is an evaluation helper only; nothing here is a runtime dependency of Vigil.

Detectors:
  neurokit2  nk.ecg_clean (default) + nk.ecg_peaks (default method "neurokit"); ecg_peaks
             expects a cleaned signal, so the documented pipeline is timed as a whole.
  xqrs       wfdb.processing.XQRS (default configuration), the WFDB reference detector.
Speed: CPU time of the detector call only (process_time: all threads, so per core), in samples
per second, against Vigil's `ecg_chain_bench` (BM_EcgChain, whole chain incl. classification,
CPU time) and Vigil's QRS detector alone.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import neurokit2 as nk
import wfdb
import wfdb.processing

RECORDS = ["101", "102", "104", "106", "107", "108", "109", "112", "114", "115", "116", "118",
           "119", "122", "124", "201", "203", "205", "207", "208", "209", "215", "217", "220",
           "223", "230"]


def detect_neurokit(sig, fs):
    cleaned = nk.ecg_clean(sig, sampling_rate=fs)
    _, info = nk.ecg_peaks(cleaned, sampling_rate=fs)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def detect_xqrs(sig, fs):
    x = wfdb.processing.XQRS(sig=sig, fs=fs)
    x.detect(verbose=False)
    return np.asarray(x.qrs_inds, dtype=np.int64)


DETECTORS = {"neurokit2": detect_neurokit, "xqrs": detect_xqrs}


def write_replay(path, samples, fs):
    with open(path, "w") as f:
        for s in samples:
            f.write('{"type":"beat","t":%.6f,"sample":%d,"label":"N"}\n' % (s / fs, s))


def vigil_eval(vigil, replays, records, out_json):
    subprocess.run([vigil, "eval", "--replays", replays, "--records", records, "--json", out_json],
                   check=True, stdout=subprocess.DEVNULL)
    with open(out_json) as f:
        return json.load(f)


def vigil_speed(bench):
    out = subprocess.run([bench, "--benchmark_filter=BM_EcgChain/1000|BM_QrsDetectorOnly",
                          "--benchmark_format=json", "--benchmark_min_time=2"],
                         check=True, capture_output=True, text=True).stdout
    speeds = {}
    for b in json.loads(out)["benchmarks"]:
        speeds[b["name"]] = b["items_per_second"]
    return speeds


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=os.path.join(root, "..", "shared", "data", "mitdb"))
    p.add_argument("--build", default=os.path.join(root, "build"))
    p.add_argument("--records", default=",".join(RECORDS))
    p.add_argument("--detectors", default=",".join(DETECTORS))
    p.add_argument("--json", default="", help="write the summary here too")
    args = p.parse_args()
    vigil = os.path.join(args.build, "pipeline", "vigil")
    bench = os.path.join(args.build, "bench", "ecg_chain_bench")
    records = args.records.split(",")
    work = tempfile.mkdtemp(prefix="vigil-baselines-")

    summary = {"records": records, "scoring": "vigil eval (ANSI/AAMI EC57, 150 ms)", "methods": {}}
    # Vigil itself, through the real contract.
    vdir = os.path.join(work, "vigil")
    os.makedirs(vdir)
    for r in records:
        subprocess.run([vigil, "replay", os.path.join(args.data, r), "--out",
                        os.path.join(vdir, r + ".jsonl"), "--no-aggregates"], check=True,
                       stderr=subprocess.DEVNULL)
    speeds = vigil_speed(bench)
    g = vigil_eval(vigil, vdir, args.data, os.path.join(work, "vigil.json"))["gross"]["beats"]
    summary["methods"]["vigil"] = {"gross": g, "samples_per_s": speeds.get("BM_EcgChain/1000"),
                                   "qrs_only_samples_per_s": speeds.get("BM_QrsDetectorOnly")}

    for name in args.detectors.split(","):
        ddir = os.path.join(work, name)
        os.makedirs(ddir)
        cpu = 0.0
        samples = 0
        for r in records:
            rec = wfdb.rdrecord(os.path.join(args.data, r), channels=[0])
            sig = rec.p_signal[:, 0].astype(np.float64)
            fs = rec.fs
            t0 = time.process_time()
            peaks = DETECTORS[name](sig, fs)
            cpu += time.process_time() - t0
            samples += len(sig)
            write_replay(os.path.join(ddir, r + ".jsonl"), peaks, fs)
            print(f"  {name} {r}: {len(peaks)} beats", file=sys.stderr, flush=True)
        g = vigil_eval(vigil, ddir, args.data, os.path.join(work, name + ".json"))["gross"]["beats"]
        summary["methods"][name] = {"gross": g, "samples_per_s": samples / cpu, "cpu_s": cpu}

    v = summary["methods"]["vigil"]
    print(f"\nGross over the non-paced records of {len(records)} (EC57, 150 ms; paced excluded)")
    print(f"{'method':<10} {'Se%':>7} {'+P%':>7} {'Se5%':>7} {'+P5%':>7} {'FN':>5} {'FP':>5} "
          f"{'Msamples/s':>11} {'Vigil speed x':>14}")
    for name, m in summary["methods"].items():
        a, l = m["gross"]["all"], m["gross"]["after_5_min"]
        ratio = v["samples_per_s"] / m["samples_per_s"] if m["samples_per_s"] else float("nan")
        m["vigil_speed_ratio"] = ratio
        print(f"{name:<10} {a['se']:7.3f} {a['ppv']:7.3f} {l['se']:7.3f} {l['ppv']:7.3f} "
              f"{a['fn']:5d} {a['fp']:5d} {m['samples_per_s'] / 1e6:11.3f} {ratio:14.1f}")
    print(f"(vigil speed: whole ECG chain incl. classification, CPU time; QRS detector alone "
          f"{v['qrs_only_samples_per_s'] / 1e6:.1f} M samples/s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
