"""python bench.py [reps] [--speed-only]: the issue-20 groundwork table (fresh processes, fresh NUMBA_CACHE_DIR per repetition)."""

import json, os, shutil, statistics, subprocess, sys, tempfile

# A scratch folder: the prototype runtime package `rtproto`, and the model modules make.py writes from the seed
# module as of commit 0e75028 (the measured one).
src = os.path.dirname(os.path.abspath(__file__))
here = tempfile.mkdtemp(prefix="runtime_design")
os.makedirs(os.path.join(here, "rtproto"))
open(os.path.join(here, "rtproto", "__init__.py"), "w").close()
shutil.copy(os.path.join(src, "runtime_core.py"), os.path.join(here, "rtproto", "core.py"))
for f in ("run1.py", "make.py", "f_import.py"):
    shutil.copy(os.path.join(src, f), here)
seed = subprocess.run(
    ["git", "show", "0e75028:generated/seed_mlp.py"], cwd=src, capture_output=True, text=True, check=True
)
open(os.path.join(here, "seed_mlp.py"), "w").write(seed.stdout)
subprocess.run([sys.executable, "make.py", "seed_mlp.py"], cwd=here, check=True)
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def proc(cache, *args):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=here)
    r = subprocess.run(
        [sys.executable, os.path.join(here, "run1.py"), *args], env=env, cwd=here, capture_output=True, text=True
    )
    d = json.loads(r.stdout.strip().splitlines()[-1])
    d["total"] = d["numba"] + d["import"] + d["first_call"]
    d["refused"] = "dynamic globals" in r.stderr
    return d


CASES = {  # name: (variant, warm-up variant run first on the fresh cache, or None)
    "A today (loop+step in model)": ("a", None),
    "B loop in model, rt by name: cold": ("b", None),
    "B ... second model (rt cache warm)": ("b", "b_twin"),
    "C rt loop, kernel argument": ("c", None),
    "D1 rt loop, FunctionType kernel: cold": ("d1", None),
    "D1 ... second model (rt cache warm)": ("d1", "b_twin"),  # b_twin warms rtproto.core only
    "D2 rt closure factory per model": ("d2", None),
    "D3 rt loop inline='always', model stub": ("d3", None),
    "D4 rt loop register_jitable, model stub": ("d4", None),
}
rows = {}
for rep in range(reps if "--speed-only" not in sys.argv else 0):
    for name, (variant, warm) in CASES.items():
        cache = tempfile.mkdtemp(prefix="nbcache")
        if warm:
            proc(cache, warm)
            if variant == "d1":  # the runtime's generic loop compiled once per machine, with another model's kernels
                proc(cache, "d1")
                shutil.rmtree(
                    os.path.join(
                        cache, [d for d in os.listdir(cache) if "runtime_proto" in d and "rtproto" not in d][0]
                    )
                )
        first, second = proc(cache, variant), proc(cache, variant)
        rows.setdefault(name, []).append((first, second))
        shutil.rmtree(cache)
med = lambda xs: statistics.median(xs)
print(f"load average before/after: {os.getloadavg()}")
print(
    "| case | 1st process: to first result (s) | of which first call | 2nd process: to first result | of which first call | compiled in 2nd process | biggest compiles, 1st process of rep. 1 (s incl./excl. callees) |"
)
print("| --- | --- | --- | --- | --- | --- | --- |")
for name, runs in rows.items():
    f = [r[0] for r in runs]
    s = [r[1] for r in runs]
    ref = " (refused: dynamic globals)" if s[0]["refused"] else ""
    big = ", ".join(  # from the first repetition
        f"{n} {a}/{b}" for n, a, b in sorted(f[0]["compiled"], key=lambda c: -c[1])[:3]
    )
    print(
        f"| {name} | {med([x['total'] for x in f]):.2f} | {med([x['first_call'] for x in f]):.2f} | {med([x['total'] for x in s]):.2f} | "
        f"{med([x['first_call'] for x in s]):.2f} | {len(s[0]['compiled'])} functions{ref} | {big} |"
    )
print("\nSpeed (warm cache; median over repetitions of each process's best of 5):")
print(
    "| variant | ns per mini-batch step (256 rows, batch 4, Adam) | ns per full-batch iteration, seed (1 row) | same weights as A |"
)
print("| --- | --- | --- | --- |")
cache = tempfile.mkdtemp(prefix="nbcache")
speed = {}
for rep in range(reps):
    for v in ("a_full", "a", "b", "e_copy", "c", "d1_full", "d1", "d3"):
        speed.setdefault(v, []).append(proc(cache, v, "--speed"))
for v, runs in speed.items():
    print(
        f"| {v} | {med([r['ns_minibatch_step'] for r in runs]):.0f} | {med([r['ns_fullbatch_iter_seed'] for r in runs]):.1f} | {runs[0]['w'] == speed['a'][0]['w']} |"
    )
shutil.rmtree(cache)
print(f"load average: {os.getloadavg()}")
print("\nF: the runtime module's import")
subprocess.run([sys.executable, "f_import.py"], cwd=here, check=True)
shutil.rmtree(here)
