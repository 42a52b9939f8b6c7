// Run a Python file on the 32-bit webassembly MicroPython under node.
//
//   node tests/mp/run.mjs ROOT SCRIPT.py [EXTRA.py ...]
//
// Copies the firmware, hal (with hal/sim) and boards packages from ROOT into
// the VM's filesystem, plus any extra files (modules or data) into /lib, the
// working directory, puts /lib on sys.path, and runs SCRIPT (and the steps
// of its RUN_MJS_STEPS generator, if it leaves one: see below).
// Prints what Python prints; exits 1 with the traceback if Python raised.
//
// Three environment variables model a board's memory (bench/heap_bench.py):
//   RUN_MJS_HEAP   the GC heap in bytes (default 16 MB); 131072 is a Pico's
//                  heap with room taken by the board's own firmware
//   RUN_MJS_CODE   a folder holding firmware/, hal/ and boards/ already
//                  compiled to .mpy: those are copied to /lib instead of ROOT's
//                  .py, so imports load bytecode as stock firmware does
//   RUN_MJS_ROMFS  a ROMFS image (mpremote romfs build) registered outside the
//                  GC heap, as a board's flash partition is; the VM mounts it
//                  at /rom (on sys.path) and nothing is copied: code runs in place
//   RUN_MJS_FIXED_HEAP=1  the GC heap cannot grow past RUN_MJS_HEAP. Without it it
//                  can: this VM's heap is split (MICROPY_GC_SPLIT_HEAP_AUTO) and
//                  its gc_collect() inside a call only marks a collection as due,
//                  so an allocation that finds no room adds a new heap area (up to
//                  2 GB in all) and never fails. With it, once SCRIPT has run (it
//                  compiles and defines; the steps do the work), the C heap that
//                  new areas come from is used up, so an allocation that does not
//                  fit raises MemoryError; collections still run between steps.
import { readFileSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const [root, script, ...extra] = process.argv.slice(2);
let out = "";
const fixedHeap = process.env.RUN_MJS_FIXED_HEAP === "1";
if (fixedHeap) {
  // The VM says so on stderr each time the heap may not grow: expected here, not news.
  const error = console.error;
  console.error = (...args) => { if (!String(args[0]).startsWith("Cannot enlarge memory")) error(...args); };
}
const romfs = process.env.RUN_MJS_ROMFS ? readFileSync(process.env.RUN_MJS_ROMFS) : undefined;
const codeRoot = process.env.RUN_MJS_CODE || root;
const codeSuffix = process.env.RUN_MJS_CODE ? ".mpy" : ".py";
const mp = await loadMicroPython({
  heapsize: process.env.RUN_MJS_HEAP ? parseInt(process.env.RUN_MJS_HEAP, 10) : 16 * 1024 * 1024,
  romfs,
  stdout: (line) => { out += line + "\n"; },
  stderr: (line) => { process.stderr.write(line + "\n"); },
  linebuffer: true,
});
mp.FS.mkdir("/lib");
// Copy the .py (or .mpy) files of package dir `rel` (and of its subpackages) to /lib.
function copyPackage(rel) {
  mp.FS.mkdir(`/lib/${rel}`);
  for (const entry of readdirSync(join(codeRoot, rel), { withFileTypes: true })) {
    const path = `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== "__pycache__") copyPackage(path);
    } else if (entry.name.endsWith(codeSuffix)) {
      mp.FS.writeFile(`/lib/${path}`, readFileSync(join(codeRoot, path)));
    }
  }
}
// The firmware, its drivers (hal/, with the sim models) and the board files:
// imports go boards -> hal -> firmware, so a script can build a whole pump.
if (romfs === undefined) for (const pkg of ["firmware", "hal", "boards"]) copyPackage(pkg);
for (const path of extra) {
  mp.FS.writeFile(`/lib/${basename(path)}`, readFileSync(path));  // bytes: data files too
}
mp.FS.chdir("/lib");
try {
  mp.runPython("import sys\nsys.path.insert(0, '/lib')\n" + readFileSync(script, "utf8"));
  if (fixedHeap) {
    // Use up the C heap, keeping 64 KB for the calls below (each step's text, the
    // reply's slot): less than any GC heap area the VM would add (at least its
    // heap's size), so the GC heap never grows.
    const M = mp._module;
    const spare = M._malloc(64 * 1024);
    for (let size = 1 << 28; size >= 8; size >>= 1) while (M._malloc(size)) {}
    M._free(spare);
  }
  // On this VM gc.collect() only marks a collection as due: it runs when
  // control returns to JS, where no Python frame is live. A script that
  // needs the heap collected while it runs (a heap measurement) leaves a
  // generator in the global RUN_MJS_STEPS, and each step (next()) then runs
  // in a runPython call of its own, until the generator is exhausted.
  // (Tested in Python, so JS holds no proxy of the generator.)
  mp.runPython("RUN_MJS_MORE = 'RUN_MJS_STEPS' in globals()");
  const step = "try:\n next(RUN_MJS_STEPS)\nexcept StopIteration:\n RUN_MJS_MORE = False";
  while (mp.globals.get("RUN_MJS_MORE") === true) mp.runPython(step);
} catch (err) {
  process.stdout.write(out);
  process.stderr.write(String(err && err.message ? err.message : err) + "\n");
  process.exit(1);
}
process.stdout.write(out);
