"""Golden check of issue #11 (hardware realism): with every hardware knob at its default, training is
bit-identical to a reference checkout (accuracy, history, rewiring count and a hash of every trained tensor).

    git worktree add --detach /tmp/rfx_ref <commit before the change>
    .venv/bin/python benchmarks/golden_hardware.py /tmp/rfx_ref ref.json   # the reference code
    .venv/bin/python benchmarks/golden_hardware.py . new.json              # this checkout
    .venv/bin/python benchmarks/golden_hardware.py --compare ref.json new.json

About 10 s per checkout on one thread (mnist-mini, 2 epochs, rewiring every 20 steps).
"""
import hashlib
import json
import sys

RUNS = {
    "rf": dict(model="rf"), "rf-input": dict(model="rf-input"), "rf-frozen": dict(model="rf-frozen"),
    "rf-hidden16": dict(model="rf", hidden=(16,)),
    "rf-input-hidden16": dict(model="rf-input", hidden=(16,)),
    "rf-noise": dict(model="rf", device={"readout_noise_v": 0.002, "alpha_dtod": 0.05, "k_sd_dtod": 0.05}),
}


def run(repo: str, out: str) -> None:
    sys.path.insert(0, repo)
    import torch

    torch.set_num_threads(1)
    from engine.config.run_config import RunConfig
    from engine.data import load_dataset
    from engine.training.loop import run_training

    ds = load_dataset("mnist-mini")
    doc = {}
    for name, kw in RUNS.items():
        cfg = RunConfig.from_dict(dict(resonators_per_chain=10, dataset="mnist-mini", epochs=2, seed=3,
                                       plasticity={"interval_steps": 20}, **kw))
        r = run_training(cfg, dataset=ds)
        h = hashlib.sha256()
        for key, value in sorted(r.model.state_dict().items()):
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
        doc[name] = {"acc": r.test_accuracy, "rewiring": r.rewiring_events, "history": r.history,
                     "state_sha": h.hexdigest()}
        print(name, doc[name]["acc"], doc[name]["rewiring"], doc[name]["state_sha"][:16], flush=True)
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=1)


def compare(a_path: str, b_path: str) -> int:
    a, b = json.load(open(a_path)), json.load(open(b_path))
    for k in a:
        print(f"{k:12s} identical={a[k] == b.get(k)}")
    return 0 if all(a[k] == b.get(k) for k in a) else 1


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    run(sys.argv[1], sys.argv[2])
